// Cloning a fully mapped space: O(1) in its size (one root table copied),
// so the figure must not move with the argument (MiB of guest RAM).
#include <benchmark/benchmark.h>

#include "bench_memory.h"
#include "guestmm/snapshot.h"

namespace vmfork::microbench {
namespace {

// Clone and destroy: the pair a fork-per-request server pays per request.
// Destroyed roots reach the free list through the allocation path's own
// reclamation, as in the monitor.
void BM_CloneAndDestroy(benchmark::State& state) {
  const uint64_t bytes = static_cast<uint64_t>(state.range(0)) << 20;
  std::unique_ptr<GuestMemory> memory = make_memory(bytes + bytes / 256 + (uint64_t{8} << 20));
  std::unique_ptr<AddressSpace> space = must(memory->create_space("bench", bytes));
  must(space->populate(Gpa(0), bytes));
  for (auto _ : state) {
    std::unique_ptr<AddressSpace> clone = must(space->clone("clone"));
    benchmark::DoNotOptimize(clone.get());
  }
}
BENCHMARK(BM_CloneAndDestroy)->Arg(16)->Arg(256);

// Snapshot and spawn, the VM-fork sequence of DESIGN section 7.
void BM_SnapshotAndSpawn(benchmark::State& state) {
  std::unique_ptr<GuestMemory> memory = make_memory(kSpaceBytes + (uint64_t{8} << 20));
  std::unique_ptr<AddressSpace> space = must(memory->create_space("bench", kSpaceBytes));
  must(space->populate(Gpa(0), kSpaceBytes));
  for (auto _ : state) {
    std::unique_ptr<MemorySnapshot> snapshot = must(space->snapshot("snapshot"));
    std::unique_ptr<AddressSpace> spawned = must(snapshot->spawn("spawned"));
    benchmark::DoNotOptimize(spawned.get());
  }
}
BENCHMARK(BM_SnapshotAndSpawn);

}  // namespace
}  // namespace vmfork::microbench
