#include "vmm/cli/count_arg.h"

#include <fmt/format.h>

#include <cctype>
#include <limits>
#include <string>

namespace vmfork::cli {

CLI::Validator count_in_range(uint64_t min, uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        uint64_t value = 0;
        bool digits = !text.empty();
        for (const char c : text) {
          if (std::isdigit(static_cast<unsigned char>(c)) == 0) {
            digits = false;
            break;
          }
          const auto digit = static_cast<uint64_t>(c - '0');
          if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
            value = std::numeric_limits<uint64_t>::max();  // out of range below
            break;
          }
          value = value * 10 + digit;
        }
        if (!digits) return fmt::format("'{}' is not a number", text);
        if (value < min || value > max) {
          return fmt::format("{} is not in the range {} to {}", text, min, max);
        }
        return {};
      },
      fmt::format("{}..{}", min, max));
}

}  // namespace vmfork::cli
