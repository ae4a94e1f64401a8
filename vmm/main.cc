// vmfork: the command line. Subcommands register themselves on the app;
// the one chosen runs after the whole command line parsed.
#include <spdlog/common.h>
#include <CLI/CLI.hpp>

#include "vmm/bench/bench_command.h"
#include "vmm/cli/log_level.h"
#include "vmm/cli/run_command.h"

int main(int argc, char** argv) {
  CLI::App app{"vmfork: a KVM-based VMM whose guest memory is cloned copy-on-write", "vmfork"};
  app.require_subcommand(1);

  spdlog::level::level_enum log_level = spdlog::level::info;
  app.add_option("--log-level", log_level, "Log verbosity on stderr (default: info)")
      ->transform(vmfork::cli::log_level_transform())
      ->type_name("trace|debug|info|warn|error|off");

  vmfork::bench::Command chosen;
  vmfork::cli::add_run_command(app, chosen);
  vmfork::bench::add_bench_command(app, chosen);

  CLI11_PARSE(app, argc, argv);
  vmfork::cli::setup_logging(log_level);
  return chosen ? chosen() : 0;
}
