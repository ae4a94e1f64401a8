// Named choices on the command line ("--engine auto|soft|kvm"): the value is
// matched case-insensitively and handed to CLI11 as the enum's number, and a
// bad value is refused with the names, e.g.
// "--engine: 'foo' is not one of auto, soft, kvm".
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

namespace vmfork::cli {

template <class Enum>
CLI::Validator choice_transform(std::vector<std::pair<std::string, Enum>> choices) {
  std::vector<std::string> names;
  for (const auto& choice : choices)
    names.push_back(choice.first);
  return CLI::Validator(
      [choices = std::move(choices), names = std::move(names)](std::string& value) {
        const std::string wanted = CLI::detail::to_lower(value);
        for (const auto& [name, number] : choices) {
          if (name == wanted) {
            value = std::to_string(static_cast<long long>(number));
            return std::string();
          }
        }
        return fmt::format("'{}' is not one of {}", value, fmt::join(names, ", "));
      },
      "");
}

}  // namespace vmfork::cli
