// The 4-level EPT walk of a TLB miss, over a fully mapped space.
#include <benchmark/benchmark.h>

#include "bench_memory.h"

namespace vmfork::microbench {
namespace {

void BM_EptWalk(benchmark::State& state) {
  std::unique_ptr<GuestMemory> memory = make_memory(2 * kSpaceBytes);
  std::unique_ptr<AddressSpace> space = make_written_space(*memory, kSpaceBytes);
  const FrameId root = space->root();
  uint64_t gfn = 0;
  for (auto _ : state) {
    const WalkResult walk = memory->tree().walk(root, Gfn(gfn), Access::kRead);
    benchmark::DoNotOptimize(walk);
    gfn = (gfn + 1) % kSpacePages;
  }
}
BENCHMARK(BM_EptWalk);

}  // namespace
}  // namespace vmfork::microbench
