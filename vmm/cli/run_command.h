// `vmfork run <guest.elf>`: boots the guest on N vCPUs and runs it and every
// clone it forks until all have ended; the exit status is 0 when every VM
// ended with 0, else the first non-zero status.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace vmfork::cli {

void add_run_command(CLI::App& app, std::function<int()>& chosen);

}  // namespace vmfork::cli
