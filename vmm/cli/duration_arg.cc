#include "vmm/cli/duration_arg.h"

#include <array>
#include <cctype>
#include <limits>
#include <string>

namespace vmfork::cli {

namespace {

struct Unit {
  std::string_view name;
  uint64_t ns;
};
constexpr std::array<Unit, 4> kUnits{
    {{"ns", 1}, {"us", 1'000}, {"ms", 1'000'000}, {"s", 1'000'000'000}}};

Error invalid(std::string_view text, const char* why) {
  return make_error(ErrorCode::kInvalidArgument,
                    "invalid duration '" + std::string(text) + "': " + why);
}

}  // namespace

Result<uint64_t> parse_duration(std::string_view text) {
  size_t digits = 0;
  uint64_t number = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
    const uint64_t digit = static_cast<uint64_t>(text[digits] - '0');
    if (number > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return invalid(text, "too large");
    }
    number = number * 10 + digit;
    ++digits;
  }
  if (digits == 0) return invalid(text, "expected a number and a unit such as 250ms or 2s");
  const std::string_view suffix = text.substr(digits);
  for (const Unit& unit : kUnits) {
    if (suffix != unit.name) continue;
    if (number > std::numeric_limits<uint64_t>::max() / unit.ns) return invalid(text, "too large");
    return number * unit.ns;
  }
  return invalid(text, "expected a unit: ns, us, ms or s");
}

CLI::Validator duration_transform() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        Result<uint64_t> ns = parse_duration(text);
        if (!ns) return ns.error().message;
        text = std::to_string(*ns);
        return {};
      },
      "", "duration");
}

}  // namespace vmfork::cli
