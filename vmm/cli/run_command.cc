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
#include <string_view>
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
  std::string kernel;  // Linux instead of a guest ELF
  std::string initrd;
  std::string cmdline{kDefaultLinuxCmdline};
  uint32_t vcpus = 1;
  uint64_t ram_bytes = uint64_t{256} << 20;
  uint64_t pool_bytes = 0;  // 0: what the host has available
  EngineChoice engine = EngineChoice::kAuto;
  bool memory_checksum = false;
  std::string snapshot_dir;        // empty: none
  uint64_t snapshot_after_ns = 0;  // 0: only at the guest's request
};

// The VM of `run --kernel`: Linux on a PC.
Result<std::unique_ptr<Vm>> boot_linux_files(Monitor& monitor, Engine engine, const RunArgs& args) {
  Result<std::vector<std::byte>> kernel = read_file(args.kernel);
  if (!kernel) return kernel.error();
  std::vector<std::byte> initrd;
  if (!args.initrd.empty()) {
    Result<std::vector<std::byte>> read = read_file(args.initrd);
    if (!read) return read.error();
    initrd = std::move(*read);
  }
  Result<GuestLayout> layout = GuestLayout::create_pc(args.ram_bytes, args.vcpus);
  if (!layout) return layout.error();
  Result<std::unique_ptr<Vm>> vm =
      boot_linux(monitor, engine, "vm0", {*kernel, initrd, args.cmdline}, *layout);
  if (!vm) return make_error(vm.error().code, args.kernel + ": " + vm.error().message);
  return vm;
}

// The VM of `run GUEST`: a freestanding guest ELF.
Result<std::unique_ptr<Vm>> boot_guest_file(Monitor& monitor, Engine engine, const RunArgs& args) {
  Result<std::vector<std::byte>> file = read_file(args.guest);
  if (!file) return file.error();
  Result<GuestLayout> layout = GuestLayout::create(args.ram_bytes, args.vcpus);
  if (!layout) return layout.error();
  Result<std::unique_ptr<Vm>> vm = boot_elf(monitor, engine, "vm0", *file, *layout);
  if (!vm) return make_error(vm.error().code, args.guest + ": " + vm.error().message);
  return vm;
}

Result<int> run_guest(const RunArgs& args) {
  // Before any thread exists, so that every thread inherits the mask.
  StopSignals signals;
  Result<Engine> engine = choose_engine(args.engine);
  if (!engine) return engine.error();
  spdlog::info("engine: {}", to_string(*engine));
  const std::string& program = args.kernel.empty() ? args.guest : args.kernel;
  const uint64_t pool_bytes = args.pool_bytes != 0 ? args.pool_bytes : default_pool_bytes();
  Result<std::unique_ptr<Monitor>> monitor = Monitor::create(open_hypervisor, pool_bytes);
  if (!monitor) return monitor.error();
  if (args.memory_checksum) (*monitor)->record_memory_checksums();
  SessionOptions session;
  if (!args.snapshot_dir.empty()) {
    (*monitor)->set_snapshot_target(args.snapshot_dir, program);
    if (args.snapshot_after_ns != 0) {
      session.tasks.push_back(
          timed_snapshot(**monitor, "vm0", args.snapshot_dir, args.snapshot_after_ns));
    }
  }

  Result<std::unique_ptr<Vm>> vm = args.kernel.empty() ? boot_guest_file(**monitor, *engine, args)
                                                       : boot_linux_files(**monitor, *engine, args);
  if (!vm) return vm.error();
  if (Result<void> launched = (*monitor)->launch(std::move(*vm)); !launched) {
    return make_error(launched.error().code, program + ": " + launched.error().message);
  }
  return run_session(**monitor, signals, session);
}

}  // namespace

void add_run_command(CLI::App& app, std::function<int()>& chosen) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run = app.add_subcommand(
      "run",
      "Boot a guest ELF (DESIGN section 8 ABI) on --vcpus vCPUs with --mem of RAM and run it "
      "and every clone it forks until all have ended; or, with --kernel, boot Linux (the kvm "
      "engine on a hardware-virtualized /dev/kvm only). Console lines are printed with the VM's "
      "name ([vm0], [vm0.1] for its clone 1, ...). Exit status: 0 when every VM ended with "
      "status 0, otherwise the first non-zero status in launch order (a VM that fails, e.g. on "
      "an unsupported instruction, ends with status 1 and an error on stderr); a status above "
      "255 (256, 0x80000000, ...) gives 255. SIGINT or SIGTERM stops every VM (each prints the "
      "rest of its console line) and exits 130 or 143. A fork the monitor cannot serve (more "
      "than 1024 vCPUs in all VMs at once, a thread or memory the host refuses) returns -1 in "
      "the guest, with a warning naming the reason.");
  run->add_option("guest", args->guest, "The guest program (static ELF64 x86-64)")
      ->check(CLI::ExistingFile);
  CLI::Option* kernel =
      run->add_option("--kernel", args->kernel,
                      "Boot this Linux kernel (a bzImage such as Debian's /boot/vmlinuz-*, "
                      "64-bit boot protocol 2.12 or later) instead of a guest ELF, on a PC with "
                      "KVM's interrupt controllers and PIT and an 8250 UART on 0x3F8 (IRQ 4) as "
                      "its console. The guest ends the VM with an out of its status to port "
                      "0xF4 (after iopl(3)), or by rebooting (reboot=k: status 0); a triple "
                      "fault ends it with an error. It forks (port 0x510) and snapshots itself "
                      "(0x511) from user space as a freestanding guest does; its snapshots "
                      "restore on the kvm engine only. RAM up to 3G, 1 to 64 vCPUs")
          ->type_name("PATH")
          ->check(CLI::ExistingFile)
          ->excludes("guest");
  run->add_option("--initrd", args->initrd,
                  "With --kernel: the initramfs (a cpio archive, "
                  "compressed as the kernel supports)")
      ->type_name("PATH")
      ->check(CLI::ExistingFile)
      ->needs(kernel);
  run->add_option("--cmdline", args->cmdline,
                  fmt::format("With --kernel: the kernel's command line (default: \"{}\")",
                              kDefaultLinuxCmdline))
      ->type_name("STR")
      ->needs(kernel);
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
    if (args->guest.empty() && args->kernel.empty()) {
      throw CLI::ValidationError("run", "a guest ELF or --kernel is required");
    }
    chosen = [args] { return run_reporting_errors([args] { return run_guest(*args); }); };
  });
}

}  // namespace vmfork::cli
