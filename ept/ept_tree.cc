#include "ept/ept_tree.h"

#include <cassert>

#include "ept/leaf_lock.h"
#include "ept/lock_order.h"
#include "ept/test_point.h"

namespace vmfork {

namespace {

// Holds the lock of one table frame, ranked by its level.
class TableLock {
 public:
  TableLock(TableMemory& memory, FrameId table, int level, Waiter& waiter)
      : memory_(memory), table_(table), rank_(table_lock_rank(level)) {
    lock_order::acquired(rank_);
    memory_.lock(table_, waiter);
  }
  ~TableLock() {
    memory_.unlock(table_);
    lock_order::released(rank_);
  }
  TableLock(const TableLock&) = delete;
  TableLock& operator=(const TableLock&) = delete;

 private:
  TableMemory& memory_;
  FrameId table_;
  LockRank rank_;
};

}  // namespace

Result<FrameId> EptTree::create_root(Waiter& waiter) {
  return memory_.allocate_table(waiter);
}

Result<std::atomic<uint64_t>*> EptTree::unshare_path(FrameId root, Gfn gfn, MissingTables missing,
                                                     Waiter& waiter) {
  if (gfn.value() > kMaxGfn) {
    return make_error(ErrorCode::kOutsideRam, "guest frame beyond the 48-bit EPT range");
  }
  FrameId table = root;
  for (int level = kEptLevels; level > 1; --level) {
    std::atomic<uint64_t>& slot = memory_.entries(table)[ept_index(gfn, level)];
    EptEntry entry(slot.load(std::memory_order_acquire));
    // Fast path: a writable entry on an all-writable path already points at
    // an exclusive table (the invariant in ept_tree.h).
    if (!entry.present() || !entry.writable()) {
      TableLock lock(memory_, table, level, waiter);
      entry = EptEntry(slot.load(std::memory_order_acquire));  // another vCPU may have done it
      if (!entry.present()) {
        if (missing == MissingTables::kFail) {
          return make_error(ErrorCode::kNotMapped, "no table on the path");
        }
        Result<FrameId> child = memory_.allocate_table(waiter);
        if (!child) return child.error();
        entry = EptEntry::table(*child, Access::kAll);
        slot.store(entry.raw(), std::memory_order_release);
      } else if (!entry.writable()) {
        if (Result<void> done = unshare_child_locked(slot, entry, level - 1, waiter); !done) {
          return done.error();
        }
        entry = EptEntry(slot.load(std::memory_order_acquire));
      }
    }
    table = entry.frame();
  }
  return &memory_.entries(table)[ept_index(gfn, 1)];
}

Result<void> EptTree::unshare_child_locked(std::atomic<uint64_t>& slot, EptEntry entry,
                                           int child_level, Waiter& waiter) {
  const FrameId child = entry.frame();
  std::atomic<uint64_t>* child_entries = memory_.entries(child);
  constexpr uint64_t kClear = EptEntry::kWrite | EptEntry::kSoftwareLock;

  // Copy it, even when its count has fallen to 1. Writing such a table in
  // place would be unsafe: a walk of the VM that dropped the other reference
  // may have loaded the entry that named it before that VM copied it away,
  // and would go on through our changes to a frame private to us (found by
  // the protocol's model, tests/model). The old table is retired, and
  // reclamation waits for such walks. The copy takes its references on the
  // children before the old table's reference is dropped, so no child is
  // ever briefly unowned, and its entries lose W: the protection moves one
  // level down.
  test_point(TestPoint::kBeforeTableCopy);
  Result<FrameId> copy = memory_.allocate_table(waiter);
  if (!copy) return copy.error();
  std::atomic<uint64_t>* copy_entries = memory_.entries(*copy);
  for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
    const EptEntry child_entry(child_entries[i].load(std::memory_order_acquire));
    if (!child_entry.present()) continue;
    assert(!child_entry.locked() && "a shared table is never written, so never leaf-locked");
    memory_.get(child_entry.frame());
    copy_entries[i].store(child_entry.without(kClear).raw(), std::memory_order_relaxed);
  }
  slot.store(EptEntry::table(*copy, entry.access() | Access::kWrite).raw(),
             std::memory_order_release);
  test_point(TestPoint::kBeforeTableRelease);
  release_entry(entry, child_level + 1);
  return Ok{};
}

std::atomic<uint64_t>* EptTree::find_leaf(FrameId root, Gfn gfn) const {
  if (gfn.value() > kMaxGfn) return nullptr;
  FrameId table = root;
  for (int level = kEptLevels; level > 1; --level) {
    const EptEntry entry(
        memory_.entries(table)[ept_index(gfn, level)].load(std::memory_order_acquire));
    if (!entry.present()) return nullptr;
    table = entry.frame();
  }
  return &memory_.entries(table)[ept_index(gfn, 1)];
}

Result<void> EptTree::map(FrameId root, Gfn gfn, FrameId frame, Access access, Waiter& waiter) {
  if (access == Access::kNone ||
      (allows(access, Access::kWrite) && !allows(access, Access::kRead))) {
    return make_error(ErrorCode::kInvalidArgument, "a leaf must be readable or executable");
  }
  Result<std::atomic<uint64_t>*> slot = unshare_path(root, gfn, MissingTables::kAllocate, waiter);
  if (!slot) return slot.error();
  LeafLock leaf(**slot, waiter);
  if (leaf.entry().present()) {
    return make_error(ErrorCode::kAlreadyMapped, "guest frame is already mapped");
  }
  leaf.install(EptEntry::leaf(frame, access));
  return Ok{};
}

Result<FrameId> EptTree::clone(FrameId root, Waiter& waiter) {
  Result<FrameId> copy = memory_.allocate_table(waiter);
  if (!copy) return copy;
  std::atomic<uint64_t>* source = memory_.entries(root);
  std::atomic<uint64_t>* target = memory_.entries(*copy);
  TableLock lock(memory_, root, kEptLevels, waiter);
  for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
    const EptEntry entry(source[i].load(std::memory_order_acquire));
    if (!entry.present()) continue;
    memory_.get(entry.frame());
    source[i].store(entry.without(EptEntry::kWrite).raw(), std::memory_order_release);
    target[i].store(entry.without(EptEntry::kWrite).raw(), std::memory_order_relaxed);
  }
  return copy;
}

void EptTree::release_entry(EptEntry entry, int level) {
  test_point(TestPoint::kBeforeReleaseEntry);
  const FrameId frame = entry.frame();
  if (!memory_.put(frame)) return;
  if (level == 1) {
    memory_.retire(frame, FrameKind::kData);
    return;
  }
  // Last reference: nobody can reach this table any more except vCPUs
  // still walking through it, which reclamation waits for.
  std::atomic<uint64_t>* entries = memory_.entries(frame);
  for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
    const EptEntry child(entries[i].load(std::memory_order_acquire));
    if (child.present()) release_entry(child, level - 1);
  }
  memory_.retire(frame, FrameKind::kTable);
}

void EptTree::release_root(FrameId root) {
  release_entry(EptEntry::table(root, Access::kAll), kEptLevels + 1);
}

}  // namespace vmfork
