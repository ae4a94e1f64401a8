// The request target ("/vms/vm0/console?offset=10&follow") split into a
// percent-decoded path and query. A bad target is an error the server
// answers with 400, naming what is wrong.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vmfork::api {

struct RequestTarget {
  std::string path;
  std::map<std::string, std::string> query;  // a key without '=' maps to ""; the last one wins
};

// Decodes %XX escapes; in a query ('+' as space, `plus` kPlusIsSpace) too.
enum class PlusIsSpace { kNo, kYes };
Result<std::string> percent_decode(std::string_view text, PlusIsSpace plus);

// The target must be in origin form (start with '/'): the only form a
// client sends to an origin server.
Result<RequestTarget> parse_target(std::string_view target);

}  // namespace vmfork::api
