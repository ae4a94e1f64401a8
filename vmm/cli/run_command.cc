#include "vmm/cli/run_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "vmm/cli/count_arg.h"
#include "vmm/cli/engine_choice.h"
#include "vmm/cli/size_arg.h"
#include "vmm/cli/stop_signals.h"
#include "vmm/cli/vm_session.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/loader/read_file.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"

namespace vmfork::cli {

namespace {

struct RunArgs {
  std::string guest;
  uint32_t vcpus = 1;
  uint64_t ram_bytes = uint64_t{256} << 20;
  uint64_t pool_bytes = 0;  // 0: what the host has available
  EngineChoice engine = EngineChoice::kAuto;
  bool memory_checksum = false;
  std::string snapshot_dir;        // empty: none
  uint64_t snapshot_after_ns = 0;  // 0: only at the guest's request
};

Result<int> run_guest(const RunArgs& args) {
  // Before any thread exists, so that every thread inherits the mask.
  StopSignals signals;
  Result<Engine> engine = choose_engine(args.engine);
  if (!engine) return engine.error();
  spdlog::info("engine: {}", to_string(*engine));
  Result<std::vector<std::byte>> file = read_file(args.guest);
  if (!file) return file.error();
  Result<GuestLayout> layout = GuestLayout::create(args.ram_bytes, args.vcpus);
  if (!layout) return layout.error();
  const uint64_t pool_bytes = args.pool_bytes != 0 ? args.pool_bytes : default_pool_bytes();
  Result<std::unique_ptr<Monitor>> monitor = Monitor::create(open_hypervisor, pool_bytes);
  if (!monitor) return monitor.error();
  if (args.memory_checksum) (*monitor)->record_memory_checksums();
  SessionOptions session;
  if (!args.snapshot_dir.empty()) {
    (*monitor)->set_snapshot_target(args.snapshot_dir, args.guest);
    if (args.snapshot_after_ns != 0) {
      session.tasks.push_back(
          timed_snapshot(**monitor, "vm0", args.snapshot_dir, args.snapshot_after_ns));
    }
  }

  Result<std::unique_ptr<Vm>> vm = boot_elf(**monitor, *engine, "vm0", *file, *layout);
  if (!vm) return make_error(vm.error().code, args.guest + ": " + vm.error().message);
  if (Result<void> launched = (*monitor)->launch(std::move(*vm)); !launched) {
    return make_error(launched.error().code, args.guest + ": " + launched.error().message);
  }
  return run_session(**monitor, signals, session);
}

}  // namespace

void add_run_command(CLI::App& app, std::function<int()>& chosen) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run = app.add_subcommand(
      "run",
      "Boot a guest ELF (DESIGN section 8 ABI) on --vcpus vCPUs with --mem of RAM and run it "
      "and every clone it forks until all have ended. Console lines are printed with the VM's "
      "name ([vm0], [vm0.1] for its clone 1, ...). Exit status: 0 when every VM ended with "
      "status 0, otherwise the first non-zero status in launch order (a VM that fails, e.g. on "
      "an unsupported instruction, ends with status 1 and an error on stderr); a status above "
      "255 (256, 0x80000000, ...) gives 255. SIGINT or SIGTERM stops every VM (each prints the "
      "rest of its console line) and exits 130 or 143. A fork the monitor cannot serve (more "
      "than 1024 vCPUs in all VMs at once, a thread or memory the host refuses) returns -1 in "
      "the guest, with a warning naming the reason.");
  run->add_option("guest", args->guest, "The guest program (static ELF64 x86-64)")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("--vcpus", args->vcpus, "vCPUs of the VM, 1 to 64 (default: 1)")
      ->type_name("N")
      ->check(count_in_range(1, 64));
  run->add_option("--mem", args->ram_bytes,
                  "Guest RAM, a multiple of 2 MiB, K/M/G suffixes (default: 256M)")
      ->transform(size_transform())
      ->type_name("SIZE");
  add_engine_options(*run, args->engine, args->pool_bytes);
  run->add_flag("--memory-checksum", args->memory_checksum,
                "After every VM has ended, print one line per VM in launch order: "
                "\"memory-checksum <vm> <hash>\", a hash of its guest memory from 1 MiB up "
                "(to compare engines)");
  add_snapshot_options(*run, args->snapshot_dir, args->snapshot_after_ns,
                       "Snapshot directory (DESIGN section 7) written when the guest asks (port "
                       "0x511) or after --snapshot-after; it must not exist or be empty");
  run->callback([args, &chosen] {
    chosen = [args] { return run_reporting_errors([args] { return run_guest(*args); }); };
  });
}

}  // namespace vmfork::cli
