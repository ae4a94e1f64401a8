#include "vmm/cli/leading_number.h"

#include <cctype>
#include <limits>

namespace vmfork::cli {

LeadingNumber leading_number(std::string_view text) {
  LeadingNumber number;
  while (number.digits < text.size() &&
         std::isdigit(static_cast<unsigned char>(text[number.digits])) != 0) {
    const auto digit = static_cast<uint64_t>(text[number.digits] - '0');
    if (number.value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      number.too_large = true;
      return number;
    }
    number.value = number.value * 10 + digit;
    ++number.digits;
  }
  return number;
}

}  // namespace vmfork::cli
