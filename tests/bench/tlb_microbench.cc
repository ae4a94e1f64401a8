// The translation cache hit: the cost every guest access pays.
#include <benchmark/benchmark.h>

#include "ept/tlb.h"

namespace vmfork::microbench {
namespace {

void BM_TlbLookupHit(benchmark::State& state) {
  TranslationCache tlb;
  const Eptp eptp = Eptp::for_root(FrameId(1));
  constexpr uint64_t kMask = TranslationCache::kEntries - 1;
  for (uint64_t gfn = 0; gfn <= kMask; ++gfn) {
    tlb.insert(eptp, Gfn(gfn), FrameId(gfn + 16), Access::kAll);
  }
  uint64_t gfn = 0;
  for (auto _ : state) {
    const TranslationCache::Hit* hit = tlb.lookup(eptp, Gfn(gfn));
    benchmark::DoNotOptimize(hit);
    gfn = (gfn + 1) & kMask;
  }
}
BENCHMARK(BM_TlbLookupHit);

}  // namespace
}  // namespace vmfork::microbench
