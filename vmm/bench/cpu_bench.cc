#include "vmm/bench/cpu_bench.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

#include "vmm/bench/guest_code.h"
#include "vmm/bench/stats.h"
#include "vmm/clock.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"

namespace vmfork::bench {

Result<CpuBenchReport> run_cpu_bench(const CpuBenchOptions& options) {
  constexpr uint64_t kRam = uint64_t{4} << 20;
  Result<GuestLayout> layout = GuestLayout::create(kRam, 1);
  if (!layout) return layout.error();
  CpuBenchReport report;
  report.instructions = integer_loop_instructions(options.iterations);
  std::vector<double> mips;
  for (int i = 0; i < options.repeat; ++i) {
    Result<std::unique_ptr<Monitor>> monitor = Monitor::create(uint64_t{64} << 20);
    if (!monitor) return monitor.error();
    Result<std::unique_ptr<Vm>> vm =
        boot_code(**monitor, Engine::kSoft, "vm0", integer_loop_code(options.iterations), *layout,
                  MapAllRam::kNo);
    if (!vm) return vm.error();
    // Timed from the start of the vCPU to the end of the VM: includes
    // thread start and the first faults, a few microseconds in seconds.
    const uint64_t start = now_ns();
    if (Result<void> launched = (*monitor)->launch(std::move(*vm)); !launched) {
      return launched.error();
    }
    if (const int status = (*monitor)->wait(); status != 0) {
      return make_error(ErrorCode::kInternal,
                        "the cpu bench guest ended with status " + std::to_string(status));
    }
    const double seconds = static_cast<double>(now_ns() - start) * 1e-9;
    mips.push_back(static_cast<double>(report.instructions) / seconds * 1e-6);
    spdlog::info("cpu bench: run {}: {:.1f} MIPS", i, mips.back());
  }
  report.mips = median(std::move(mips));
  return report;
}

}  // namespace vmfork::bench
