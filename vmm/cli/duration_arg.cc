#include "vmm/cli/duration_arg.h"

#include <array>
#include <limits>
#include <string>

#include "vmm/cli/leading_number.h"

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
  const LeadingNumber leading = leading_number(text);
  if (leading.too_large) return invalid(text, "too large");
  if (leading.digits == 0) return invalid(text, "expected a number and a unit such as 250ms or 2s");
  const uint64_t number = leading.value;
  const size_t digits = leading.digits;
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
