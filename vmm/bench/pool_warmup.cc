#include "vmm/bench/pool_warmup.h"

namespace vmfork::bench {

Result<void> populate_pool_now(GuestMemory& memory) {
  FramePool& pool = memory.pool();
  return pool.populate_now(FrameId(0), pool.capacity_frames());
}

Result<void> populate_pool_ahead(GuestMemory& memory, uint64_t bytes) {
  FramePool& pool = memory.pool();
  return pool.populate_now(pool.next_fresh(), (bytes + kPageSize - 1) / kPageSize);
}

}  // namespace vmfork::bench
