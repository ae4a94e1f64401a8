// vmfork: the command line. Subcommands register themselves on the app;
// the one chosen runs after the whole command line parsed.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/common.h>
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "vmm/bench/bench_command.h"
#include "vmm/cli/log_level.h"
#include "vmm/cli/restore_command.h"
#include "vmm/cli/run_command.h"
#include "vmm/cli/serve_command.h"
#include "vmm/cli/vm_command.h"

int main(int argc, char** argv) {
  CLI::App app{"vmfork: a KVM-based VMM whose guest memory is cloned copy-on-write", "vmfork"};
  app.require_subcommand(1);

  spdlog::level::level_enum log_level = spdlog::level::info;
  app.add_option("--log-level", log_level, "Log verbosity on stderr (default: info)")
      ->transform(vmfork::cli::log_level_transform())
      ->type_name("trace|debug|info|warn|error|off");

  vmfork::bench::Command chosen;
  vmfork::cli::add_run_command(app, chosen);
  vmfork::cli::add_restore_command(app, chosen);
  vmfork::bench::add_bench_command(app, chosen);
  vmfork::cli::add_serve_command(app, chosen);
  vmfork::cli::add_vm_command(app, chosen);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // "vmfork runn x", "vmfork bench clonee": CLI11 would say a subcommand
    // is required, not that it does not know the word given as one.
    CLI::App* level = &app;
    std::string path = app.get_name();
    while (!level->get_subcommands().empty()) {
      level = level->get_subcommands().front();
      path += " " + level->get_name();
    }
    const std::vector<std::string> words = app.remaining(/*recurse=*/true);
    const std::vector<CLI::App*> known = level->get_subcommands({});
    if (!known.empty() && !words.empty() && !words.front().starts_with('-')) {
      std::vector<std::string> names;
      for (const CLI::App* subcommand : known)
        names.push_back(subcommand->get_name());
      return app.exit(
          CLI::ExtrasError(fmt::format("unknown subcommand '{}' of {} (its subcommands are {})",
                                       words.front(), path, fmt::join(names, ", ")),
                           CLI::ExitCodes::ExtrasError));
    }
    return app.exit(error);
  }
  vmfork::cli::setup_logging(log_level);
  return chosen ? chosen() : 0;
}
