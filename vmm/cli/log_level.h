// --log-level: the names the CLI accepts and the logger they configure.
// Logs go to stderr so that stdout carries only the command's output (one
// JSON object under --json).
#pragma once

#include <map>
#include <string>

#include <spdlog/common.h>
#include <CLI/CLI.hpp>

namespace vmfork::cli {

// trace, debug, info, warn, error, off.
const std::map<std::string, spdlog::level::level_enum>& log_level_names();

// Turns a level name (any case) into the number CLI11 converts to
// spdlog::level::level_enum, or rejects it naming the accepted ones.
CLI::Validator log_level_transform();

// Makes a stderr logger the default one and sets its level.
void setup_logging(spdlog::level::level_enum level);

}  // namespace vmfork::cli
