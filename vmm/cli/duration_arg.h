// Durations on the command line: a whole number and a unit, "500us",
// "250ms", "2s" (ns, us, ms, s).
#pragma once

#include <cstdint>
#include <string_view>

#include <CLI/CLI.hpp>

#include "base/result.h"

namespace vmfork::cli {

// In nanoseconds.
Result<uint64_t> parse_duration(std::string_view text);

// For CLI11 options: turns "250ms" into "250000000" (ns) before CLI11
// converts it, or rejects it with parse_duration's message.
CLI::Validator duration_transform();

}  // namespace vmfork::cli
