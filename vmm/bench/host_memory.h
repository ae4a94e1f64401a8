// The benchmarks touch host memory in proportion to their sizes (the Linux
// baselines, a host-populated pool). Asking for more than the host has
// available would end in the OOM killer; refuse it up front instead.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"

namespace vmfork::bench {

// An error naming `purpose` when `bytes` exceeds the host's MemAvailable.
Result<void> require_available_memory(uint64_t bytes, std::string_view purpose);

// The field `key` of a /proc file of "<key>: <n> kB" lines (/proc/meminfo,
// /proc/self/smaps_rollup), in bytes.
Result<uint64_t> proc_kb_field(const char* file, std::string_view key);

}  // namespace vmfork::bench
