#include "ept/leaf_lock.h"

#include <cassert>

#include "ept/lock_order.h"
#include "ept/test_point.h"

namespace vmfork {

LeafLock::LeafLock(std::atomic<uint64_t>& slot, Waiter& waiter) : slot_(slot) {
  test_point(TestPoint::kBeforeLeafLock);
  lock_order::acquired(LockRank::kLeaf);
  uint64_t current = slot_.load(std::memory_order_relaxed);
  for (;;) {
    if ((current & EptEntry::kSoftwareLock) != 0) {
      waiter.on_wait();
      current = slot_.load(std::memory_order_relaxed);
      continue;
    }
    if (slot_.compare_exchange_weak(current, current | EptEntry::kSoftwareLock,
                                    std::memory_order_acquire, std::memory_order_relaxed)) {
      break;
    }
  }
  entry_ = EptEntry(current);
}

LeafLock::~LeafLock() {
  assert(!awaiting_invept_ && "a remapped leaf was left read-only without stage 2");
  slot_.store(entry_.raw(), std::memory_order_release);
  lock_order::released(LockRank::kLeaf);
}

void LeafLock::store(EptEntry next) {
  assert(!next.locked());
  // The section 4 rule: a present leaf never points at a new frame with W set.
  assert(
      !(entry_.present() && next.present() && next.frame() != entry_.frame() && next.writable()) &&
      "a present leaf may change frame only read-only (stage 1)");
  slot_.store(next.raw() | EptEntry::kSoftwareLock, std::memory_order_release);
  entry_ = next;
}

void LeafLock::install(EptEntry next) {
  assert(!entry_.present() && next.present());
  test_point(TestPoint::kBeforeLeafInstall);
  store(next);
}

void LeafLock::add_permissions(Access access) {
  assert(entry_.present() && !awaiting_invept_);
  test_point(TestPoint::kBeforeAddPermissions);
  store(entry_.with(EptEntry::permission_bits(access)));
}

EptEntry LeafLock::reduce_permissions(Access access) {
  const EptEntry previous = entry_;
  store(EptEntry(entry_.raw() & ~EptEntry::kPermissionMask)
            .with(EptEntry::permission_bits(entry_.access() & access)));
  return previous;
}

void LeafLock::remap_read_only(FrameId frame) {
  assert(entry_.present());
  test_point(TestPoint::kBeforeRemapReadOnly);
  // Same attributes (memory type, ignore-PAT, ...), new frame, no W.
  store(EptEntry((entry_.raw() & ~(EptEntry::kAddressMask | EptEntry::kWrite)) |
                 (frame.pool_offset() & EptEntry::kAddressMask)));
  awaiting_invept_ = true;
}

void LeafLock::make_writable(const InveptDone& /*invept*/) {
  assert(entry_.present());
  test_point(TestPoint::kBeforeMakeWritable);
  store(entry_.with(EptEntry::kWrite));
  awaiting_invept_ = false;
}

}  // namespace vmfork
