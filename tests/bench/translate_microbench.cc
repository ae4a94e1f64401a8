// VcpuMemory::translate when the translation cache hits: the fast path of
// every guest load and store of the soft engine.
#include <benchmark/benchmark.h>

#include "bench_memory.h"
#include "guestmm/vcpu_memory.h"

namespace vmfork::microbench {
namespace {

void BM_TranslateHit(benchmark::State& state) {
  std::unique_ptr<GuestMemory> memory = make_memory(2 * kSpaceBytes);
  std::unique_ptr<AddressSpace> space = make_written_space(*memory, kSpaceBytes);
  std::unique_ptr<VcpuMemory> vcpu = must(VcpuMemory::create(*space));
  // As many pages as the cache holds: after the first pass, every one hits.
  constexpr uint64_t kMask = TranslationCache::kEntries - 1;
  for (uint64_t gfn = 0; gfn <= kMask; ++gfn) {
    benchmark::DoNotOptimize(vcpu->translate(Gfn(gfn).gpa(), Access::kWrite));
  }
  uint64_t gfn = 0;
  for (auto _ : state) {
    Result<std::byte*> host = vcpu->translate(Gfn(gfn).gpa(), Access::kWrite);
    benchmark::DoNotOptimize(host);
    gfn = (gfn + 1) & kMask;
  }
}
BENCHMARK(BM_TranslateHit);

// The per-basic-block check with nothing pending.
void BM_VcpuCheckIdle(benchmark::State& state) {
  std::unique_ptr<GuestMemory> memory = make_memory(uint64_t{4} << 20);
  std::unique_ptr<AddressSpace> space = must(memory->create_space("bench", uint64_t{1} << 20));
  std::unique_ptr<VcpuMemory> vcpu = must(VcpuMemory::create(*space));
  for (auto _ : state)
    vcpu->check();
}
BENCHMARK(BM_VcpuCheckIdle);

}  // namespace
}  // namespace vmfork::microbench
