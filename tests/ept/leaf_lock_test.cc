// LeafLock: the busy bit of one EPT leaf, and the only writer of leaves
// (DESIGN section 4). Single-threaded; the waiting case is in
// leaf_lock_concurrency_test.cc.
#include "ept/leaf_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "base/types.h"
#include "base/waiter.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/shootdown.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

constexpr FrameId kFrame(0x100);
constexpr FrameId kCopy(0x200);

// A finished INVEPT over an empty domain: the proof make_writable() demands.
InveptDone finished_invept() {
  ShootdownDomain domain;
  ShootdownBatch batch = ShootdownBatch::single_context(domain, Eptp::for_root(FrameId(1)));
  return batch.wait(HostWaiter::instance());
}

class LeafLockTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

  EptEntry slot_entry() const { return EptEntry(slot_.load()); }

  std::atomic<uint64_t> slot_{0};
  HostWaiter waiter_;
};

TEST_F(LeafLockTest, LockBitIsSetWhileHeld) {
  slot_ = EptEntry::leaf(kFrame, Access::kAll).raw();
  LeafLock leaf(slot_, waiter_);
  EXPECT_TRUE(slot_entry().locked());
}

TEST_F(LeafLockTest, LockBitIsClearedOnRelease) {
  slot_ = EptEntry::leaf(kFrame, Access::kAll).raw();
  { LeafLock leaf(slot_, waiter_); }
  EXPECT_EQ(slot_entry(), EptEntry::leaf(kFrame, Access::kAll));
}

TEST_F(LeafLockTest, LocksANotPresentLeaf) {
  LeafLock leaf(slot_, waiter_);
  EXPECT_TRUE(slot_entry().locked());
  EXPECT_FALSE(slot_entry().present()) << "the busy bit does not make an entry present";
  EXPECT_FALSE(leaf.entry().present());
}

TEST_F(LeafLockTest, EntryIsTheLeafWithoutTheLockBit) {
  slot_ = EptEntry::leaf(kFrame, Access::kReadExecute).raw();
  LeafLock leaf(slot_, waiter_);
  EXPECT_EQ(leaf.entry(), EptEntry::leaf(kFrame, Access::kReadExecute));
}

TEST_F(LeafLockTest, InstallMakesANotPresentLeafPresent) {
  {
    LeafLock leaf(slot_, waiter_);
    leaf.install(EptEntry::leaf(kFrame, Access::kReadWrite));
    EXPECT_EQ(leaf.entry(), EptEntry::leaf(kFrame, Access::kReadWrite));
    EXPECT_EQ(slot_entry(),
              EptEntry::leaf(kFrame, Access::kReadWrite).with(EptEntry::kSoftwareLock))
        << "published at once, still locked";
  }
  EXPECT_EQ(slot_entry(), EptEntry::leaf(kFrame, Access::kReadWrite));
}

TEST_F(LeafLockTest, AddPermissionsKeepsTheFrameAndAddsBits) {
  slot_ = EptEntry::leaf(kFrame, Access::kRead, MemoryType::kWriteThrough).raw();
  { LeafLock(slot_, waiter_).add_permissions(Access::kWrite); }
  EXPECT_EQ(slot_entry(), EptEntry::leaf(kFrame, Access::kReadWrite, MemoryType::kWriteThrough));
}

TEST_F(LeafLockTest, ReducePermissionsKeepsOnlyTheGivenPermissions) {
  slot_ = EptEntry::leaf(kFrame, Access::kAll).raw();
  {
    LeafLock leaf(slot_, waiter_);
    const EptEntry previous = leaf.reduce_permissions(Access::kReadExecute);
    EXPECT_EQ(previous, EptEntry::leaf(kFrame, Access::kAll));
  }
  EXPECT_EQ(slot_entry(), EptEntry::leaf(kFrame, Access::kReadExecute));
}

TEST_F(LeafLockTest, ReducePermissionsNeverAddsAPermission) {
  slot_ = EptEntry::leaf(kFrame, Access::kRead).raw();
  { LeafLock(slot_, waiter_).reduce_permissions(Access::kReadWrite); }
  EXPECT_EQ(slot_entry(), EptEntry::leaf(kFrame, Access::kRead));
}

TEST_F(LeafLockTest, ReducePermissionsToNoneMakesTheLeafNotPresent) {
  slot_ = EptEntry::leaf(kFrame, Access::kAll).raw();
  { LeafLock(slot_, waiter_).reduce_permissions(Access::kNone); }
  EXPECT_FALSE(slot_entry().present());
  EXPECT_FALSE(slot_entry().locked());
}

TEST_F(LeafLockTest, RemapReadOnlyNamesTheNewFrameWithoutW) {
  slot_ = EptEntry::leaf(kFrame, Access::kAll, MemoryType::kWriteThrough).raw();
  LeafLock leaf(slot_, waiter_);
  leaf.remap_read_only(kCopy);
  EXPECT_EQ(leaf.entry(), EptEntry::leaf(kCopy, Access::kReadExecute, MemoryType::kWriteThrough));
  EXPECT_EQ(slot_entry(), leaf.entry().with(EptEntry::kSoftwareLock)) << "stage 1 is published";
  leaf.make_writable(finished_invept());
}

TEST_F(LeafLockTest, RemapReadOnlyOfAReadOnlyLeafKeepsItsPermissions) {
  slot_ = EptEntry::leaf(kFrame, Access::kRead).raw();
  LeafLock leaf(slot_, waiter_);
  leaf.remap_read_only(kCopy);
  EXPECT_EQ(leaf.entry(), EptEntry::leaf(kCopy, Access::kRead));
  leaf.make_writable(finished_invept());
}

TEST_F(LeafLockTest, MakeWritableAfterRemapSetsW) {
  slot_ = EptEntry::leaf(kFrame, Access::kReadExecute).raw();
  {
    LeafLock leaf(slot_, waiter_);
    leaf.remap_read_only(kCopy);
    leaf.make_writable(finished_invept());
    EXPECT_EQ(leaf.entry(), EptEntry::leaf(kCopy, Access::kAll));
  }
  EXPECT_EQ(slot_entry(), EptEntry::leaf(kCopy, Access::kAll));
}

TEST_F(LeafLockTest, ASecondLockAfterReleaseSucceedsAtOnce) {
  slot_ = EptEntry::leaf(kFrame, Access::kAll).raw();
  { LeafLock first(slot_, waiter_); }
  LeafLock second(slot_, waiter_);
  EXPECT_TRUE(slot_entry().locked());
}

using LeafLockDeathTest = LeafLockTest;

TEST_F(LeafLockDeathTest, ReleasingARemappedLeafWithoutStage2Asserts) {
  slot_ = EptEntry::leaf(kFrame, Access::kAll).raw();
  EXPECT_DEATH(
      {
        LeafLock leaf(slot_, waiter_);
        leaf.remap_read_only(kCopy);
      },
      "without stage 2");
}

TEST_F(LeafLockDeathTest, InstallOverAPresentLeafAsserts) {
  slot_ = EptEntry::leaf(kFrame, Access::kRead).raw();
  EXPECT_DEATH(
      {
        LeafLock leaf(slot_, waiter_);
        leaf.install(EptEntry::leaf(kCopy, Access::kRead));
      },
      "Assertion");
}

TEST_F(LeafLockDeathTest, InstallingANotPresentEntryAsserts) {
  EXPECT_DEATH(
      {
        LeafLock leaf(slot_, waiter_);
        leaf.install(EptEntry());
      },
      "Assertion");
}

TEST_F(LeafLockDeathTest, AddingPermissionsBeforeStage2Asserts) {
  // Setting W with add_permissions() would skip the INVEPT of step 6.
  slot_ = EptEntry::leaf(kFrame, Access::kAll).raw();
  EXPECT_DEATH(
      {
        LeafLock leaf(slot_, waiter_);
        leaf.remap_read_only(kCopy);
        leaf.add_permissions(Access::kWrite);
      },
      "Assertion");
}

TEST_F(LeafLockDeathTest, AddingPermissionsToANotPresentLeafAsserts) {
  EXPECT_DEATH(
      {
        LeafLock leaf(slot_, waiter_);
        leaf.add_permissions(Access::kRead);
      },
      "Assertion");
}

TEST_F(LeafLockDeathTest, RemappingANotPresentLeafAsserts) {
  EXPECT_DEATH(
      {
        LeafLock leaf(slot_, waiter_);
        leaf.remap_read_only(kCopy);
      },
      "Assertion");
}

}  // namespace
}  // namespace vmfork
