// The decimal number that starts a command-line value ("64" of "64M", "250"
// of "250ms"), for the parsers of sizes and durations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vmfork::cli {

struct LeadingNumber {
  uint64_t value = 0;
  size_t digits = 0;       // 0: `text` does not start with a digit
  bool too_large = false;  // more than 64 bits
};

LeadingNumber leading_number(std::string_view text);

}  // namespace vmfork::cli
