#include "vmm/api/client/fault.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vmfork::api {

namespace {

// Trailing newlines and blanks would split the one-line message.
std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::string describe_fault(unsigned status, std::string_view body) {
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("fault_message") &&
      parsed["fault_message"].is_string()) {
    return fmt::format("{} (HTTP {})", parsed["fault_message"].get<std::string>(), status);
  }
  if (trimmed(body).empty()) return fmt::format("the daemon answered HTTP {}", status);
  return fmt::format("{} (HTTP {})", trimmed(body), status);
}

Error fault_error(unsigned status, std::string_view body) {
  return make_error(status >= 500 ? ErrorCode::kInternal : ErrorCode::kInvalidArgument,
                    describe_fault(status, body));
}

}  // namespace vmfork::api
