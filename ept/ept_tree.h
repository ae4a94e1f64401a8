// Operations on EPT trees in a TableMemory: create, map, clone, unshare,
// release (DESIGN section 3). Trees share subtrees copy-on-write; a table
// with more than one reference, or reached through one, is never written.
//
// Invariant: an entry with W set, reached from a root through entries that
// all have W set, points at a frame with exactly one reference. Clone keeps
// it by clearing W in the root entries of both sides; unshare keeps it by
// clearing W in every entry of the table it makes exclusive.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/result.h"
#include "base/types.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/table_memory.h"
#include "ept/walker.h"

namespace vmfork {

enum class MissingTables : uint8_t { kFail, kAllocate };

class EptTree {
 public:
  explicit EptTree(TableMemory& memory) : memory_(memory) {}

  TableMemory& memory() const { return memory_; }

  // A new, empty PML4 with one reference (the caller's).
  Result<FrameId> create_root(Waiter& waiter = HostWaiter::instance());

  WalkResult walk(FrameId root, Gfn gfn, Access requested) const {
    return ept_walk(memory_, root, gfn, requested);
  }

  // Unshares top-down (DESIGN section 3) so that every table on the path from
  // `root` to the leaf of `gfn` is exclusive to this tree and entered with W;
  // returns the leaf's slot. Missing tables are allocated or reported as
  // kNotMapped. The leaf itself is not changed: translations cached by vCPUs
  // stay valid. `root` must be exclusive to its owner (a root always is).
  Result<std::atomic<uint64_t>*> unshare_path(FrameId root, Gfn gfn, MissingTables missing,
                                              Waiter& waiter);

  // The leaf slot of `gfn`, without changing anything; nullptr if a table on
  // the path is missing. Only for reading, or for a quiesced tree.
  std::atomic<uint64_t>* find_leaf(FrameId root, Gfn gfn) const;

  // Installs a leaf for `gfn` (which must not be mapped) and takes over the
  // caller's reference on `frame`.
  Result<void> map(FrameId root, Gfn gfn, FrameId frame, Access access, Waiter& waiter);

  // Clone (DESIGN section 3): a new root with a copy of `root`'s present
  // entries, a reference taken on each child, and W cleared in the root
  // entries of both sides. O(1) in the size of the tree. The source's
  // vCPUs must flush (INVEPT) before they write again, and no fault may be
  // in flight in the source.
  Result<FrameId> clone(FrameId root, Waiter& waiter = HostWaiter::instance());

  // Drops the reference that a present entry at `level` holds: on a data
  // frame for a leaf (level 1), on a table otherwise. A table that loses its
  // last reference drops the references its own entries hold, then retires.
  void release_entry(EptEntry entry, int level);
  // Drops the reference held on a root table.
  void release_root(FrameId root);

  // Calls visit(gfn, entry) for every present leaf, in gfn order.
  template <class Visit>
  void for_each_leaf(FrameId root, Visit&& visit) const {
    visit_table(root, kEptLevels, 0, visit);
  }
  // Calls visit(frame, level) for every table reachable from `root`,
  // including the root, once per path that reaches it.
  template <class Visit>
  void for_each_table(FrameId root, Visit&& visit) const {
    visit_tables(root, kEptLevels, visit);
  }

 private:
  // Makes the table that `slot` (in an exclusive table locked by the caller)
  // points to exclusive, and sets W in `slot`.
  Result<void> unshare_child_locked(std::atomic<uint64_t>& slot, EptEntry entry, int child_level,
                                    Waiter& waiter);

  template <class Visit>
  void visit_table(FrameId table, int level, uint64_t gfn_base, Visit& visit) const {
    std::atomic<uint64_t>* entries = memory_.entries(table);
    for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
      const EptEntry entry(entries[i].load(std::memory_order_acquire) & ~EptEntry::kSoftwareLock);
      if (!entry.present()) continue;
      const uint64_t gfn = gfn_base | (i << (kEptIndexBits * (level - 1)));
      if (level == 1) {
        visit(Gfn(gfn), entry);
      } else {
        visit_table(entry.frame(), level - 1, gfn, visit);
      }
    }
  }
  template <class Visit>
  void visit_tables(FrameId table, int level, Visit& visit) const {
    visit(table, level);
    if (level == 1) return;
    std::atomic<uint64_t>* entries = memory_.entries(table);
    for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
      const EptEntry entry(entries[i].load(std::memory_order_acquire));
      if (entry.present()) visit_tables(entry.frame(), level - 1, visit);
    }
  }

  TableMemory& memory_;
};

}  // namespace vmfork
