#include "vmm/api/client/client_response.h"

#include <algorithm>
#include <cctype>

namespace vmfork::api {

const char* to_string(Method method) {
  switch (method) {
    case Method::kGet:
      return "GET";
    case Method::kPost:
      return "POST";
    case Method::kPut:
      return "PUT";
    case Method::kPatch:
      return "PATCH";
    case Method::kDelete:
      return "DELETE";
  }
  return "?";
}

std::optional<std::string> ClientResponse::header(std::string_view name) const {
  const auto same = [name](const std::string& field) {
    return std::ranges::equal(field, name, [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) ==
             std::tolower(static_cast<unsigned char>(b));
    });
  };
  for (const auto& [field, value] : headers) {
    if (same(field)) return value;
  }
  return std::nullopt;
}

}  // namespace vmfork::api
