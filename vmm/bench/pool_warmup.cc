#include "vmm/bench/pool_warmup.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <atomic>
#include <cstddef>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace vmfork::bench {

Result<void> populate_pool_now(GuestMemory& memory) {
  FramePool& pool = memory.pool();
  std::byte* base = pool.data(FrameId(0));
  const uint64_t bytes = pool.capacity_frames() * kPageSize;
  if (madvise(base, bytes, MADV_POPULATE_WRITE) == 0) return Ok{};
  if (errno != EINVAL) {
    return make_error(
        ErrorCode::kSystem,
        std::string("MADV_POPULATE_WRITE of the frame pool failed: ") + std::strerror(errno));
  }
  // Older kernels: write every page without changing it. Frames may already
  // be in use (the root table), hence the atomic OR of zero.
  for (uint64_t offset = 0; offset < bytes; offset += kPageSize) {
    reinterpret_cast<std::atomic<uint8_t>*>(base + offset)->fetch_or(0, std::memory_order_relaxed);
  }
  return Ok{};
}

}  // namespace vmfork::bench
