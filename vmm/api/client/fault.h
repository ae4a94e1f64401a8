// A daemon's error response as one line for the user:
// "<fault_message> (HTTP <status>)". Every error of the API carries
// {"fault_message": "..."} (api_contract.md); a body that does not (a proxy,
// a daemon of another version) is shown as it came, so nothing is hidden.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace vmfork::api {

std::string describe_fault(unsigned status, std::string_view body);

// describe_fault as an Error: a 4xx is the caller's (kInvalidArgument), a
// 5xx the daemon's (kInternal).
Error fault_error(unsigned status, std::string_view body);

}  // namespace vmfork::api
