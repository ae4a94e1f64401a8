// Byte sizes on the command line: "4096", "512K", "64M", "16G", "1T" (binary
// multiples; "MiB"/"MB" spellings accepted), always whole 4 KiB pages since
// every size the CLI takes is guest RAM or memory to touch page by page.
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>
#include <string_view>

#include "base/result.h"

namespace vmfork::cli {

Result<uint64_t> parse_size(std::string_view text);

// "64 MiB", "16 GiB", or bytes when no binary unit divides evenly.
std::string format_size(uint64_t bytes);

// For CLI11 options: turns "64M" into "67108864" before CLI11 converts it,
// or rejects it with parse_size's message.
CLI::Validator size_transform();

}  // namespace vmfork::cli
