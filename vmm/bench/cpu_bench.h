// `vmfork bench cpu`: the soft engine's speed on an integer loop, in
// millions of guest instructions per second on one vCPU (DESIGN section 10
// target: at least 100).
#pragma once

#include <cstdint>

#include "ept/result.h"

namespace vmfork::bench {

struct CpuBenchOptions {
  uint32_t iterations = 25'000'000;  // of the 4-instruction loop
  int repeat = 3;
};

struct CpuBenchReport {
  double mips = 0;            // median over the runs
  uint64_t instructions = 0;  // per run
};

Result<CpuBenchReport> run_cpu_bench(const CpuBenchOptions& options);

}  // namespace vmfork::bench
