// `vmfork bench cpu`: an engine's speed on an integer loop, in millions of
// guest instructions per second on one vCPU (DESIGN section 10 target for
// the soft engine: at least 100), beside the same loop run natively on the
// host and, for the kvm engine, the soft engine, both in the same run; then
// the mix workload (mix_bench.h): realistic code on the soft engine against
// the same C code natively and under qemu-x86_64.
#pragma once

#include <cstdint>
#include <optional>

#include "base/result.h"
#include "vmm/bench/mix_bench.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork::bench {

struct CpuBenchOptions {
  Engine engine = Engine::kSoft;
  uint32_t iterations = 25'000'000;  // of the 4-instruction loop
  int repeat = 3;
  MixBenchOptions mix;  // its engine and repeat are the ones above
};

struct CpuBenchReport {
  Engine engine = Engine::kSoft;
  double mips = 0;                  // the engine's, median over the runs
  uint64_t instructions = 0;        // per run
  double host_mips = 0;             // the loop natively on the host
  std::optional<double> soft_mips;  // for an engine other than soft
  MixBenchReport mix;
};

Result<CpuBenchReport> run_cpu_bench(const CpuBenchOptions& options);

}  // namespace vmfork::bench
