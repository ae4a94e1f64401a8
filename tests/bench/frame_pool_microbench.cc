// Frame pool allocate/release: the lock-free free list that every COW copy
// and table unshare allocates from.
#include <benchmark/benchmark.h>

#include "bench_memory.h"

namespace vmfork::microbench {
namespace {

void allocate_release(benchmark::State& state, Zeroed zeroed) {
  std::unique_ptr<FramePool> pool = must(
      FramePool::create({.capacity_bytes = uint64_t{4} << 20, .populate = Populate::kOnDemand}));
  // One frame on the free list: every allocation recycles, as in steady state.
  pool->release(must(pool->allocate(Zeroed::kYes)));
  for (auto _ : state) {
    const FrameId frame = must(pool->allocate(zeroed));
    benchmark::DoNotOptimize(frame);
    pool->release(frame);
  }
}

void BM_FramePoolAllocateRelease(benchmark::State& state) {
  allocate_release(state, Zeroed::kNo);
}
BENCHMARK(BM_FramePoolAllocateRelease);

void BM_FramePoolAllocateZeroedRelease(benchmark::State& state) {
  allocate_release(state, Zeroed::kYes);
}
BENCHMARK(BM_FramePoolAllocateZeroedRelease);

}  // namespace
}  // namespace vmfork::microbench
