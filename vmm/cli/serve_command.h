// `vmfork serve`: the daemon of the control API (vmm/api/).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace vmfork::cli {

void add_serve_command(CLI::App& app, std::function<int()>& chosen);

}  // namespace vmfork::cli
