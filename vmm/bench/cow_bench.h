// `vmfork bench cow`: the service time of a COW fault through the full
// protocol of DESIGN section 4 (copy, two-stage publish, INVEPT shootdown
// acknowledged by another running vCPU), with 1 and 2 faulting threads on
// different frames, against the kernel's own anonymous COW fault
// (DESIGN section 10: under 1/5 of the kernel's; 2 threads at least 1.7x
// the rate of 1).
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace vmfork::bench {

struct CowBenchOptions {
  uint64_t ram_bytes = uint64_t{64} << 20;  // the snapshotted space; each thread faults half
  int rounds = 11;                          // timed rounds per thread count
  int kernel_repeat = 11;                   // runs of the kernel baseline
};

struct CowThreadsRow {
  int threads = 0;       // faulting threads
  int acking_vcpus = 0;  // other running vCPUs that acknowledge each fault's INVEPT
  uint64_t faults_per_thread = 0;
  double ns_per_fault_median = 0;  // per faulting thread: its elapsed time / its faults
  double faults_per_sec = 0;       // all threads together (median over rounds)
  double shootdowns_per_fault = 0;
};

struct CowBenchReport {
  uint64_t ram_bytes = 0;
  int rounds = 0;
  std::vector<CowThreadsRow> threads;  // 1 then 2 faulting threads
  double kernel_cow_ns_per_fault_median = 0;
  // The same page copies without the protocol: 2-thread rate over 1-thread
  // rate, the ceiling for rate_2_over_1 on this machine (copy_scaling.h).
  double plain_copy_rate_2_over_1 = 0;
};

Result<CowBenchReport> run_cow_bench(const CowBenchOptions& options);

}  // namespace vmfork::bench
