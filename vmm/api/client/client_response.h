// What a request to `vmfork serve` sends and gets back: the method, extra
// headers, and the response (status, headers, body), free of Beast types so
// that the CLI and the tests need not compile Beast to use the client.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmfork::api {

// The methods the API uses (api_contract.md), and no others.
enum class Method : uint8_t { kGet, kPost, kPut, kPatch, kDelete };

const char* to_string(Method method);

// Header fields in the order they were sent or received; names compare
// case-insensitively (RFC 9110 section 5.1).
using Headers = std::vector<std::pair<std::string, std::string>>;

struct ClientResponse {
  unsigned status = 0;  // 200, 204, 404 ...
  Headers headers;
  std::string body;

  bool success() const { return status >= 200 && status < 300; }
  // The value of the first field named `name`, if any.
  std::optional<std::string> header(std::string_view name) const;
};

}  // namespace vmfork::api
