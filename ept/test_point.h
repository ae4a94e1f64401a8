// Test points: named places between the steps of the COW protocol where a
// race test may hold a thread (DESIGN section 4). They live inside the
// primitives (leaf lock, shootdown, copy, release, walk, reclamation), so a
// change that moves a step moves its point with it. A hook may only delay
// or wait; it never changes a step. In the monitor's build test_point() is
// empty; in the *_testing libraries (VMFORK_TESTING) it calls the hook a
// test installed, if any.
#pragma once

#include <cstdint>

#ifdef VMFORK_TESTING
#include <atomic>
#endif

namespace vmfork {

enum class TestPoint : uint8_t {
  kBeforeLeafLock,        // LeafLock: before taking the busy bit
  kBeforeLeafInstall,     // LeafLock::install: before the store
  kBeforeAddPermissions,  // LeafLock::add_permissions: before the store
  kBeforeRemapReadOnly,   // LeafLock::remap_read_only (stage 1): before the store
  kBeforeMakeWritable,    // LeafLock::make_writable (stage 2): before the store
  kBeforeShootdownPost,   // ShootdownBatch: before the requests go out
  kBeforeShootdownWait,   // ShootdownBatch::wait: requests posted, none awaited
  kAfterShootdownWait,    // ShootdownBatch::wait: every target acknowledged
  kBeforeFrameCopy,       // copy_frame_polling: before the first quarter
  kDuringFrameCopy,       // copy_frame_polling: between two quarters
  kBeforeReleaseEntry,    // EptTree::release_entry: before the reference is dropped
  kBeforeTableCopy,       // EptTree unshare: before the copy of a table
  kBeforeTableRelease,    // EptTree unshare: copy published, old table not released
  kBetweenWalkLevels,     // ept_walk: one level's entry read, the next not yet
  kBeforeFramesReturned,  // Reclaimer::collect: before a frame goes back to the pool
};

#ifdef VMFORK_TESTING
using TestPointHook = void (*)(TestPoint);

// The installed hook, or null. Tests install it before their threads start
// and remove it after they join.
inline std::atomic<TestPointHook> test_point_hook{nullptr};

inline void test_point(TestPoint point) {
  if (TestPointHook hook = test_point_hook.load(std::memory_order_acquire)) hook(point);
}
#else
inline void test_point(TestPoint /*point*/) {}
#endif

}  // namespace vmfork
