// `vmfork restore DIR --clones N`: start N clones of a snapshot directory
// (DESIGN section 7), lazily, and run them until all have ended.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace vmfork::cli {

void add_restore_command(CLI::App& app, std::function<int()>& chosen);

}  // namespace vmfork::cli
