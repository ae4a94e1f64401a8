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

}  // namespace vmfork::bench
