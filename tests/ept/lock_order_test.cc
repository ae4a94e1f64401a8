// The lock order of lock_order.h, checked on every acquisition in builds
// with assertions: table locks top-down, then one leaf lock, then at most
// one data frame.
#include "ept/lock_order.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "base/types.h"
#include "base/waiter.h"
#include "ept/ept_entry.h"
#include "ept/ept_tree.h"
#include "ept/leaf_lock.h"
#include "tests/ept/fake_table_memory.h"
#include "tests/ept/printers.h"

#ifdef NDEBUG
#error "the lock-order checks exist only with assertions on (ept_testing)"
#endif

namespace vmfork {
namespace {

using ept_test::FakeTableMemory;

class LockOrderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

  std::atomic<uint64_t> slot_{EptEntry::leaf(FrameId(7), Access::kAll).raw()};
  HostWaiter waiter_;
};
using LockOrderDeathTest = LockOrderTest;

TEST_F(LockOrderTest, TableRanksGoTopDownByLevel) {
  EXPECT_EQ(table_lock_rank(4), LockRank::kTablePml4);
  EXPECT_EQ(table_lock_rank(3), LockRank::kTablePdpt);
  EXPECT_EQ(table_lock_rank(2), LockRank::kTablePd);
  EXPECT_EQ(table_lock_rank(1), LockRank::kTablePt);
  EXPECT_LT(LockRank::kTablePt, LockRank::kLeaf);
  EXPECT_LT(LockRank::kLeaf, LockRank::kDataFrame);
}

TEST_F(LockOrderTest, TableLocksTopDownThenLeafThenDataFrameIsFine) {
  for (int level = kEptLevels; level >= 1; --level) {
    lock_order::acquired(table_lock_rank(level));
  }
  {
    LeafLock leaf(slot_, waiter_);
    lock_order::acquired(LockRank::kDataFrame);
    lock_order::released(LockRank::kDataFrame);
  }
  for (int level = 1; level <= kEptLevels; ++level) {
    lock_order::released(table_lock_rank(level));
  }
  SUCCEED();
}

TEST_F(LockOrderTest, LeafThenDataFrameWithoutTableLocksIsFine) {
  LeafLock leaf(slot_, waiter_);
  lock_order::acquired(LockRank::kDataFrame);
  lock_order::released(LockRank::kDataFrame);
  SUCCEED();
}

TEST_F(LockOrderTest, TheSameLocksCanBeTakenAgainAfterRelease) {
  { LeafLock first(slot_, waiter_); }
  { LeafLock second(slot_, waiter_); }
  lock_order::acquired(table_lock_rank(4));
  lock_order::released(table_lock_rank(4));
  SUCCEED();
}

TEST_F(LockOrderTest, EptTreeOperationsReleaseEveryLockTheyTake) {
  FakeTableMemory memory;
  EptTree tree(memory);
  const FrameId root = tree.create_root().value();
  const FrameId data = memory.allocate_data().value();
  ASSERT_TRUE(tree.map(root, Gfn(0x12345), data, Access::kAll, waiter_).ok());
  const FrameId copy = tree.clone(root).value();
  ASSERT_TRUE(tree.unshare_path(copy, Gfn(0x12345), MissingTables::kFail, waiter_).ok());
  // Had anything stayed recorded as held, this would be out of order.
  lock_order::acquired(table_lock_rank(4));
  lock_order::released(table_lock_rank(4));
}

TEST_F(LockOrderDeathTest, LeafLockThenPml4TableLockAborts) {
  EXPECT_DEATH(
      {
        LeafLock leaf(slot_, waiter_);
        lock_order::acquired(table_lock_rank(4));
      },
      "lock order violation");
}

TEST_F(LockOrderDeathTest, TableLocksBottomUpAbort) {
  EXPECT_DEATH(
      {
        lock_order::acquired(table_lock_rank(1));
        lock_order::acquired(table_lock_rank(4));
      },
      "lock order violation");
}

TEST_F(LockOrderDeathTest, TwoLocksOfOneTableLevelAbort) {
  EXPECT_DEATH(
      {
        lock_order::acquired(table_lock_rank(2));
        lock_order::acquired(table_lock_rank(2));
      },
      "lock order violation");
}

TEST_F(LockOrderDeathTest, TwoLeafLocksAbort) {
  std::atomic<uint64_t> other{0};
  EXPECT_DEATH(
      {
        LeafLock first(slot_, waiter_);
        LeafLock second(other, waiter_);
      },
      "lock order violation");
}

TEST_F(LockOrderDeathTest, TwoDataFrameLocksAbort) {
  EXPECT_DEATH(
      {
        lock_order::acquired(LockRank::kDataFrame);
        lock_order::acquired(LockRank::kDataFrame);
      },
      "lock order violation");
}

TEST_F(LockOrderDeathTest, DataFrameThenLeafLockAborts) {
  EXPECT_DEATH(
      {
        lock_order::acquired(LockRank::kDataFrame);
        LeafLock leaf(slot_, waiter_);
      },
      "lock order violation");
}

TEST_F(LockOrderDeathTest, ReleasingOutOfOrderAborts) {
  EXPECT_DEATH(
      {
        lock_order::acquired(table_lock_rank(4));
        lock_order::acquired(table_lock_rank(3));
        lock_order::released(table_lock_rank(4));
      },
      "lock order violation");
}

TEST_F(LockOrderDeathTest, ReleasingALockNotHeldAborts) {
  EXPECT_DEATH(lock_order::released(LockRank::kLeaf), "lock order violation");
}

TEST_F(LockOrderDeathTest, UnsharingWhileHoldingALeafLockAborts) {
  // unshare_path() takes table locks; a fault handler holding a leaf lock
  // must not call it.
  FakeTableMemory memory;
  EptTree tree(memory);
  const FrameId root = tree.create_root().value();
  EXPECT_DEATH(
      {
        LeafLock leaf(slot_, waiter_);
        (void)tree.unshare_path(root, Gfn(1), MissingTables::kAllocate, waiter_);
      },
      "lock order violation");
}

}  // namespace
}  // namespace vmfork
