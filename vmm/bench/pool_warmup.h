// Host-populating a frame pool before a benchmark. Benchmarks create their
// GuestMemory with Populate::kOnDemand (so a sparse 16 GiB pool costs no
// host memory, and no populator thread competes with the measured threads
// on a 2-core host) and then populate up front exactly what Populate::kAhead
// would have populated ahead of demand: the measured path then takes no host
// page fault, as in the monitor.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "guestmm/guest_memory.h"

namespace vmfork::bench {

// Backs every frame of `memory`'s pool with host memory now. Contents are
// unchanged (MADV_POPULATE_WRITE, or an atomic OR of zero per page).
Result<void> populate_pool_now(GuestMemory& memory);
// Backs the next `bytes` of fresh frames (those the pool hands out next)
// with host memory now: what Populate::kAhead keeps ready, for a benchmark
// whose pool is too large to populate whole.
Result<void> populate_pool_ahead(GuestMemory& memory, uint64_t bytes);

}  // namespace vmfork::bench
