// `vmfork bench clone`: clone latency of a fully mapped address space, by
// guest RAM size, against Linux fork() of a process with the same memory
// touched (DESIGN section 10: flat within 2x from 64 MiB to 16 GiB, and
// under 1/1000 of fork).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"

namespace vmfork::bench {

struct CloneBenchOptions {
  std::vector<uint64_t> sizes;                  // guest RAM per measurement, multiples of 4 KiB
  int repeat = 101;                             // clones timed per size
  int fork_repeat = 11;                         // fork() calls timed per size
  uint64_t fork_max_bytes = uint64_t{1} << 30;  // no fork baseline above this
};

struct CloneBenchRow {
  uint64_t ram_bytes = 0;
  uint64_t clone_ns_median = 0;
  uint64_t clone_ns_min = 0;
  uint64_t populate_ns = 0;  // mapping every page of the source space, once
  std::optional<uint64_t> linux_fork_ns_median;
};

struct CloneBenchReport {
  std::vector<CloneBenchRow> rows;
};

Result<CloneBenchReport> run_clone_bench(const CloneBenchOptions& options);

}  // namespace vmfork::bench
