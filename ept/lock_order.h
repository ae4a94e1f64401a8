// The lock order of the memory manager, written once (DESIGN section 4):
//
//   1. table locks, top-down (PML4 before PDPT before PD before PT),
//   2. the leaf lock of one guest page (the busy bit of its EPT entry),
//   3. the lock of at most one data frame, held only for a decision.
//
// No lock is held while waiting for another vCPU, except a leaf lock across
// its own copy and shootdown. Debug builds check the order on every
// acquisition with a per-thread record of the locks held.
#pragma once

#include <cstdint>

namespace vmfork {

enum class LockRank : uint8_t {
  kTablePml4 = 10,
  kTablePdpt = 11,
  kTablePd = 12,
  kTablePt = 13,
  kLeaf = 20,
  kDataFrame = 30,
};

// The rank of the lock on a table frame at `level` (4 = PML4 .. 1 = PT).
constexpr LockRank table_lock_rank(int level) {
  return static_cast<LockRank>(static_cast<int>(LockRank::kTablePml4) + (4 - level));
}

namespace lock_order {
#ifdef NDEBUG
inline void acquired(LockRank) {}
inline void released(LockRank) {}
#else
// Asserts `rank` ranks above every lock this thread holds, then records it.
void acquired(LockRank rank);
void released(LockRank rank);
#endif
}  // namespace lock_order

}  // namespace vmfork
