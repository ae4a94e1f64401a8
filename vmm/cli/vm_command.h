// `vmfork vm ls|create|fork|pause|resume|snapshot|restore|rm|console|events
// --api-sock PATH [--json]`: the VMs of a running `vmfork serve`, each
// subcommand one request of its API (api_contract.md). Tables for people,
// the daemon's JSON with --json; a daemon's error is printed as
// "vmfork: <fault_message> (HTTP <status>)" with exit status 1.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace vmfork::cli {

void add_vm_command(CLI::App& app, std::function<int()>& chosen);

}  // namespace vmfork::cli
