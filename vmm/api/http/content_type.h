// Which request bodies the API reads: JSON, declared as such or not at all,
// and application/x-www-form-urlencoded, because `curl -d '{...}'` declares
// that and a curl user should not need -H for every request
// (api_contract.md). The body is parsed as JSON whatever it claims.
#pragma once

#include <string_view>

namespace vmfork::api {

// `content_type` is the header's value ("" if absent); parameters such as
// "; charset=utf-8" and the case of the media type do not matter.
bool is_accepted_body_type(std::string_view content_type);

}  // namespace vmfork::api
