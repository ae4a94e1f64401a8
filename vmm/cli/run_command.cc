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

#include "vmm/cli/choice_arg.h"
#include "vmm/cli/count_arg.h"
#include "vmm/cli/size_arg.h"
#include "vmm/cli/stop_signals.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/loader/read_file.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"

namespace vmfork::cli {

namespace {

enum class EngineChoice : uint8_t { kAuto, kSoft, kKvm };

struct RunArgs {
  std::string guest;
  uint32_t vcpus = 1;
  uint64_t ram_bytes = uint64_t{256} << 20;
  uint64_t pool_bytes = 0;  // 0: what the host has available
  EngineChoice engine = EngineChoice::kAuto;
  bool memory_checksum = false;
};

// Host memory available now, whole MiB; the default frame pool. Guests that
// write more than this fail with "frame pool exhausted" instead of waking
// the OOM killer.
uint64_t default_pool_bytes() {
  const long pages = sysconf(_SC_AVPHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return uint64_t{4} << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) >> 20 << 20;
}

// Which engine runs the guest, or why none can. The kvm engine's own
// checks (capabilities, userfaultfd) run when its first VM is created.
Result<Engine> choose_engine(EngineChoice wanted) {
  if (wanted == EngineChoice::kSoft) return Engine::kSoft;
  const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  const int open_errno = errno;
  if (kvm >= 0) {
    close(kvm);
    return Engine::kKvm;
  }
  if (wanted == EngineChoice::kKvm) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--engine kvm: cannot open /dev/kvm: {} (use --engine soft, "
                                  "or tests/kvm/nested.sh on a host without KVM)",
                                  std::strerror(open_errno)));
  }
  return Engine::kSoft;  // auto, without /dev/kvm
}

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

  Result<std::unique_ptr<Vm>> vm = boot_elf(**monitor, *engine, "vm0", *file, *layout);
  if (!vm) return make_error(vm.error().code, args.guest + ": " + vm.error().message);
  if (Result<void> launched = (*monitor)->launch(std::move(*vm)); !launched) {
    return make_error(launched.error().code, args.guest + ": " + launched.error().message);
  }
  Monitor& running = **monitor;
  if (!signals.watch([&running](int signal) {
        fmt::print(stderr, "vmfork: {}: stopping every VM\n", signal_name(signal));
        std::fflush(stderr);
        running.stop_all(static_cast<uint32_t>(128 + signal));
      })) {
    spdlog::warn("no thread to take SIGINT and SIGTERM: they stay blocked until the VMs end");
  }
  int status = running.wait();
  signals.unwatch();

  std::vector<ForkLatency> forks = (*monitor)->fork_latencies();
  if (!forks.empty()) {
    std::sort(forks.begin(), forks.end(),
              [](const ForkLatency& a, const ForkLatency& b) { return a.ns < b.ns; });
    spdlog::info("fork latency over {} clone(s): median {:.1f} us, max {:.1f} us", forks.size(),
                 static_cast<double>(forks[forks.size() / 2].ns) / 1000,
                 static_cast<double>(forks.back().ns) / 1000);
  }
  for (const MemoryChecksum& checksum : (*monitor)->memory_checksums())
    fmt::print("memory-checksum {} {:016x}\n", checksum.vm, checksum.checksum);
  const Monitor::Tally tally = running.tally();
  if (const int signal = signals.caught(); signal != 0) {
    // Always shown: the user asked for the stop and sees what it stopped.
    fmt::print(stderr, "vmfork: stopped by {}: {} VM(s) ran, {} ended with a non-zero status\n",
               signal_name(signal), tally.launched, tally.failed);
    std::fflush(stderr);
    return 128 + signal;
  }
  spdlog::info("{} VM(s) ran, {} ended with a non-zero status", tally.launched, tally.failed);
  if (const std::optional<Monitor::Failure> failure = running.first_failure();
      failure && static_cast<uint32_t>(status) != failure->status) {
    // An exit status keeps 8 bits: 256 must not read as success.
    fmt::print(stderr,
               "vmfork: {} ended with status {} ({:#x}), which an exit status cannot "
               "hold: exiting with {}\n",
               failure->vm, failure->status, failure->status, status);
    std::fflush(stderr);
  }
  return status;
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
  run->add_option("--pool", args->pool_bytes,
                  "Frame pool shared by the VM and its clones (default: the host's available "
                  "memory); a VM that needs more fails with \"frame pool exhausted\"")
      ->transform(size_transform())
      ->type_name("SIZE");
  run->add_option("--engine", args->engine,
                  "auto (kvm when /dev/kvm opens, else soft), soft (the x86-64 interpreter), "
                  "or kvm (KVM vCPUs; fails when /dev/kvm does not open) (default: auto)")
      ->transform(choice_transform<EngineChoice>({{"auto", EngineChoice::kAuto},
                                                  {"soft", EngineChoice::kSoft},
                                                  {"kvm", EngineChoice::kKvm}}))
      ->type_name("auto|soft|kvm");
  run->add_flag("--memory-checksum", args->memory_checksum,
                "After every VM has ended, print one line per VM in launch order: "
                "\"memory-checksum <vm> <hash>\", a hash of its guest memory from 1 MiB up "
                "(to compare engines)");
  run->callback([args, &chosen] {
    chosen = [args] {
      Result<int> status = make_error(ErrorCode::kInternal, "not run");
      try {
        status = run_guest(*args);
      } catch (const std::system_error& error) {
        // A thread of the monitor's own (the pool's populator, the kvm
        // fault service) the host refused at boot; vCPU threads are
        // refused as errors.
        status = make_error(ErrorCode::kSystem, fmt::format("cannot start: {}", error.what()));
      }
      if (!status) {
        fmt::print(stderr, "vmfork: {}\n", status.error().message);
        return 1;
      }
      return *status;
    };
  });
}

}  // namespace vmfork::cli
