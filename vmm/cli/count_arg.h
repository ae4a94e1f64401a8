// Whole-number options with a range ("--vcpus 1..64"): a value that is not
// a number is refused as such ("'abc' is not a number"), where CLI11's
// Range says "Value abc not in range 1 to 64".
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

namespace vmfork::cli {

CLI::Validator count_in_range(uint64_t min, uint64_t max);

}  // namespace vmfork::cli
