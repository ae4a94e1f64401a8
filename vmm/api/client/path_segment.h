// A value placed in a request target (a VM id in /vms/{id}, a query
// value): percent-encoded (RFC 3986) so that an id holding '/', '?' or a
// blank names that id, not another path.
#pragma once

#include <string>
#include <string_view>

namespace vmfork::api {

// Unreserved characters (letters, digits, "-._~") stay; every other byte
// becomes %XX.
std::string path_segment(std::string_view value);

}  // namespace vmfork::api
