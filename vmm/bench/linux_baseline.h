// The Linux baselines that the clone and COW figures are judged against
// (DESIGN section 10), measured in the same process invocation: fork() of
// a process with the same memory touched, and the kernel's own anonymous
// COW fault. Both use 4 KiB pages (MADV_NOHUGEPAGE), as our EPT does.
// Call them while the process is single-threaded: they fork.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace vmfork::bench {

// Median time fork() takes in the parent with `bytes` of anonymous private
// memory touched (one byte written per page); the child exits at once.
Result<uint64_t> linux_fork_ns_median(uint64_t bytes, int repeat);

// Median, over `repeat` runs, of the time per page the parent takes to
// write one byte to each page of `bytes` of touched anonymous memory while
// a forked child still shares every page (so every write is a COW fault).
Result<double> kernel_cow_ns_per_fault_median(uint64_t bytes, int repeat);

}  // namespace vmfork::bench
