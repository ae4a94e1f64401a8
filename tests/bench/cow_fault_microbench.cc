// One COW fault through the whole protocol of DESIGN section 4, taken by a
// single vCPU with no other vCPU in the space: the shootdown is only its
// own acknowledgement, so this is the fault's floor without cross-core
// traffic.
#include <benchmark/benchmark.h>

#include "bench_memory.h"
#include "guestmm/snapshot.h"
#include "guestmm/vcpu_memory.h"

namespace vmfork::microbench {
namespace {

void BM_CowFaultSingleVcpu(benchmark::State& state) {
  std::unique_ptr<GuestMemory> memory = make_memory(3 * kSpaceBytes + (uint64_t{8} << 20));
  std::unique_ptr<AddressSpace> space = make_written_space(*memory, kSpaceBytes);
  std::unique_ptr<MemorySnapshot> snapshot = must(space->snapshot("base"));
  std::unique_ptr<VcpuMemory> vcpu = must(VcpuMemory::create(*space));
  uint64_t gfn = 0;
  for (auto _ : state) {
    if (gfn == kSpacePages) {
      // Every page is ours again: share them all anew, untimed. The vCPU is
      // parked (stopped) across the snapshot, as the protocol requires.
      state.PauseTiming();
      vcpu->park();
      snapshot.reset();
      snapshot = must(space->snapshot("base"));
      memory->reclaimer().collect();
      memory->reclaimer().collect();
      vcpu->resume();
      gfn = 0;
      state.ResumeTiming();
    }
    Result<std::byte*> host = vcpu->translate(Gfn(gfn).gpa(), Access::kWrite);
    if (!host) die(host.error());
    __atomic_store_n(reinterpret_cast<uint64_t*>(*host), gfn, __ATOMIC_RELAXED);
    vcpu->check();
    ++gfn;
  }
  if (space->counters().copies < static_cast<uint64_t>(state.iterations())) {
    state.SkipWithError("a store did not take a COW fault");
  }
}
BENCHMARK(BM_CowFaultSingleVcpu);

}  // namespace
}  // namespace vmfork::microbench
