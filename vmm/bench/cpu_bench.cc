#include "vmm/bench/cpu_bench.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vmm/bench/guest_code.h"
#include "vmm/bench/stats.h"
#include "vmm/clock.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"

namespace vmfork::bench {

namespace {

// Median MIPS of the integer loop on `engine` (a VM per run, timed from the
// start of its vCPU to its end: thread start and the first faults are
// included, microseconds in the run; creating the VM is not).
Result<double> engine_mips(Engine engine, const CpuBenchOptions& options) {
  constexpr uint64_t kRam = uint64_t{4} << 20;
  Result<GuestLayout> layout = GuestLayout::create(kRam, 1);
  if (!layout) return layout.error();
  const uint64_t instructions = integer_loop_instructions(options.iterations);
  std::vector<double> mips;
  for (int i = 0; i < options.repeat; ++i) {
    Result<std::unique_ptr<Monitor>> monitor = Monitor::create(open_hypervisor, uint64_t{64} << 20);
    if (!monitor) return monitor.error();
    Result<std::unique_ptr<Vm>> vm = boot_code(
        **monitor, engine, "vm0", integer_loop_code(options.iterations), *layout, MapAllRam::kNo);
    if (!vm) return vm.error();
    const uint64_t start = now_ns();
    if (Result<void> launched = (*monitor)->launch(std::move(*vm)); !launched) {
      return launched.error();
    }
    if (const int status = (*monitor)->wait(); status != 0) {
      return make_error(ErrorCode::kInternal,
                        "the cpu bench guest ended with status " + std::to_string(status));
    }
    const double seconds = static_cast<double>(now_ns() - start) * 1e-9;
    mips.push_back(static_cast<double>(instructions) / seconds * 1e-6);
    spdlog::info("cpu bench: {} run {}: {:.1f} MIPS", to_string(engine), i, mips.back());
  }
  return median(std::move(mips));
}

double host_mips(const CpuBenchOptions& options) {
  const uint64_t instructions = integer_loop_instructions(options.iterations);
  std::vector<double> mips;
  for (int i = 0; i < options.repeat; ++i) {
    const uint64_t start = now_ns();
    run_integer_loop_natively(options.iterations);
    const double seconds = static_cast<double>(now_ns() - start) * 1e-9;
    mips.push_back(static_cast<double>(instructions) / seconds * 1e-6);
  }
  return median(std::move(mips));
}

}  // namespace

Result<CpuBenchReport> run_cpu_bench(const CpuBenchOptions& options) {
  CpuBenchReport report;
  report.engine = options.engine;
  report.instructions = integer_loop_instructions(options.iterations);
  report.host_mips = host_mips(options);
  Result<double> mips = engine_mips(options.engine, options);
  if (!mips) return mips.error();
  report.mips = *mips;
  if (options.engine != Engine::kSoft) {
    Result<double> soft = engine_mips(Engine::kSoft, options);
    if (!soft) return soft.error();
    report.soft_mips = *soft;
  }
  MixBenchOptions mix = options.mix;
  mix.engine = options.engine;
  mix.repeat = options.repeat;
  Result<MixBenchReport> mixed = run_mix_bench(mix);
  if (!mixed) return mixed.error();
  report.mix = std::move(*mixed);
  return report;
}

}  // namespace vmfork::bench
