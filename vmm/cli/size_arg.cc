#include "vmm/cli/size_arg.h"

#include <array>
#include <cctype>
#include <limits>

#include "base/types.h"
#include "vmm/cli/leading_number.h"

namespace vmfork::cli {

namespace {

struct Unit {
  char letter;
  unsigned shift;
  const char* name;
};
constexpr std::array<Unit, 4> kUnits{
    {{'K', 10, "KiB"}, {'M', 20, "MiB"}, {'G', 30, "GiB"}, {'T', 40, "TiB"}}};

Error invalid(std::string_view text, const char* why) {
  return make_error(ErrorCode::kInvalidArgument,
                    "invalid size '" + std::string(text) + "': " + why);
}

char upper(char c) {
  return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  const LeadingNumber leading = leading_number(text);
  if (leading.too_large) return invalid(text, "too large");
  if (leading.digits == 0) return invalid(text, "expected a number such as 64M or 1G");
  const uint64_t number = leading.value;
  const size_t digits = leading.digits;

  std::string_view suffix = text.substr(digits);
  unsigned shift = 0;
  if (!suffix.empty()) {
    const char letter = upper(suffix.front());
    const Unit* unit = nullptr;
    for (const Unit& candidate : kUnits) {
      if (candidate.letter == letter) unit = &candidate;
    }
    if (unit == nullptr) return invalid(text, "unknown unit (use K, M, G or T)");
    shift = unit->shift;
    suffix.remove_prefix(1);
    // "M", "MB", "MiB" all mean 2^20: sizes here are memory, never disk.
    if (suffix.size() == 2 && upper(suffix[0]) == 'I' && upper(suffix[1]) == 'B') suffix = {};
    if (suffix.size() == 1 && upper(suffix[0]) == 'B') suffix = {};
    if (!suffix.empty()) return invalid(text, "unknown unit (use K, M, G or T)");
  }
  if (number > (std::numeric_limits<uint64_t>::max() >> shift)) return invalid(text, "too large");
  const uint64_t bytes = number << shift;
  if (bytes == 0) return invalid(text, "must not be zero");
  if (bytes % kPageSize != 0) return invalid(text, "must be a multiple of 4 KiB");
  return bytes;
}

std::string format_size(uint64_t bytes) {
  for (auto unit = kUnits.rbegin(); unit != kUnits.rend(); ++unit) {
    const uint64_t scale = uint64_t{1} << unit->shift;
    if (bytes >= scale && bytes % scale == 0) {
      return std::to_string(bytes / scale) + " " + unit->name;
    }
  }
  return std::to_string(bytes) + " B";
}

CLI::Validator size_transform() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        Result<uint64_t> bytes = parse_size(text);
        if (!bytes) return bytes.error().message;
        text = std::to_string(*bytes);
        return {};
      },
      "", "size");
}

}  // namespace vmfork::cli
