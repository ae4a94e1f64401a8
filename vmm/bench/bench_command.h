// `vmfork bench <clone|cow|fork|cpu|restore>`: registers the bench subcommands and
// their options; the chosen one runs after the whole command line parsed.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace vmfork::bench {

// What the command line chose; returns the process exit status.
using Command = std::function<int()>;

void add_bench_command(CLI::App& app, Command& chosen);

}  // namespace vmfork::bench
