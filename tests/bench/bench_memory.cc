#include "bench_memory.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <span>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace vmfork::microbench {

void die(const Error& error) {
  std::fprintf(stderr, "vmfork_microbench: %s\n", error.message.c_str());
  std::abort();
}

void must(Result<void> result) {
  if (!result) die(result.error());
}

std::unique_ptr<GuestMemory> make_memory(uint64_t pool_bytes) {
  std::unique_ptr<GuestMemory> memory =
      must(GuestMemory::create({.pool_bytes = pool_bytes, .populate = Populate::kOnDemand}));
  FramePool& pool = memory->pool();
  // What Populate::kAhead does in the background, done now. Failure only
  // costs host faults in the timed loops, so it is not fatal.
  (void)madvise(pool.data(FrameId(0)), pool.capacity_frames() * kPageSize, MADV_POPULATE_WRITE);
  return memory;
}

std::unique_ptr<AddressSpace> make_written_space(GuestMemory& memory, uint64_t bytes) {
  std::unique_ptr<AddressSpace> space = must(memory.create_space("bench", bytes));
  must(space->populate(Gpa(0), bytes));
  for (uint64_t gfn = 0; gfn < bytes / kPageSize; ++gfn) {
    const uint64_t word = gfn;
    must(space->write(Gfn(gfn).gpa(), std::as_bytes(std::span<const uint64_t>(&word, 1))));
  }
  return space;
}

}  // namespace vmfork::microbench
