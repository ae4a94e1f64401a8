// FrameTable: one word per frame holding its reference count and its lock.
#include "guestmm/frame_table.h"

#include <gtest/gtest.h>

#include <functional>

#include "test_support.h"

namespace vmfork::testing {
namespace {

// A waiter that counts its spins and runs `on_spin` on the n-th one.
class ScriptedWaiter final : public Waiter {
 public:
  ScriptedWaiter(int act_on_spin, std::function<void()> action)
      : act_on_spin_(act_on_spin), action_(std::move(action)) {}
  void on_wait() override {
    if (++spins_ == act_on_spin_) action_();
  }
  int spins() const { return spins_; }

 private:
  int spins_ = 0;
  const int act_on_spin_;
  std::function<void()> action_;
};

TEST(FrameTable, AllocatedFrameHasOneReference) {
  FrameTable table = unwrap(FrameTable::create(64));
  EXPECT_EQ(table.frames(), 64u);
  EXPECT_EQ(table.refcount(FrameId(7)), 0u);
  table.set_allocated(FrameId(7));
  EXPECT_EQ(table.refcount(FrameId(7)), 1u);
  EXPECT_EQ(table.refcount(FrameId(8)), 0u) << "frames have separate words";
}

TEST(FrameTable, GetAddsAndPutDropsAReference) {
  FrameTable table = unwrap(FrameTable::create(64));
  const FrameId frame(3);
  table.set_allocated(frame);
  table.get(frame);
  table.get(frame);
  EXPECT_EQ(table.refcount(frame), 3u);
  EXPECT_FALSE(table.put(frame));
  EXPECT_EQ(table.refcount(frame), 2u);
}

TEST(FrameTable, PutReturnsTrueOnlyAtTheLastReference) {
  FrameTable table = unwrap(FrameTable::create(64));
  const FrameId frame(3);
  table.set_allocated(frame);
  table.get(frame);
  EXPECT_FALSE(table.put(frame));
  EXPECT_TRUE(table.put(frame));
  EXPECT_EQ(table.refcount(frame), 0u);
}

TEST(FrameTable, SetAllocatedResetsARecycledFrameToOneReference) {
  FrameTable table = unwrap(FrameTable::create(64));
  const FrameId frame(5);
  table.set_allocated(frame);
  EXPECT_TRUE(table.put(frame));
  table.set_allocated(frame);
  EXPECT_EQ(table.refcount(frame), 1u);
}

TEST(FrameTable, LockAndUnlockDoNotChangeTheCount) {
  FrameTable table = unwrap(FrameTable::create(64));
  const FrameId frame(9);
  table.set_allocated(frame);
  table.get(frame);
  EXPECT_FALSE(table.locked(frame));
  table.lock(frame, HostWaiter::instance());
  EXPECT_TRUE(table.locked(frame));
  EXPECT_EQ(table.refcount(frame), 2u);
  // References move while the lock is held, and the lock survives them.
  table.get(frame);
  EXPECT_FALSE(table.put(frame));
  EXPECT_TRUE(table.locked(frame));
  table.unlock(frame);
  EXPECT_FALSE(table.locked(frame));
  EXPECT_EQ(table.refcount(frame), 2u);
}

TEST(FrameTable, PutOfTheLastReferenceIsSeenUnderTheLock) {
  FrameTable table = unwrap(FrameTable::create(64));
  const FrameId frame(9);
  table.set_allocated(frame);
  table.lock(frame, HostWaiter::instance());
  EXPECT_TRUE(table.put(frame)) << "the lock bit must not count as a reference";
  EXPECT_EQ(table.refcount(frame), 0u);
  table.unlock(frame);
}

TEST(FrameTable, UncontendedLockNeverWaits) {
  FrameTable table = unwrap(FrameTable::create(64));
  ScriptedWaiter waiter(1, [] {});
  table.lock(FrameId(1), waiter);
  EXPECT_EQ(waiter.spins(), 0);
  table.unlock(FrameId(1));
}

TEST(FrameTable, LockOfAHeldFrameSpinsInTheWaiterUntilUnlocked) {
  FrameTable table = unwrap(FrameTable::create(64));
  const FrameId frame(2);
  table.set_allocated(frame);
  table.lock(frame, HostWaiter::instance());
  // The waiter plays the holder: it releases the lock on its third spin.
  ScriptedWaiter waiter(3, [&] { table.unlock(frame); });
  table.lock(frame, waiter);
  EXPECT_EQ(waiter.spins(), 3);
  EXPECT_TRUE(table.locked(frame));
  EXPECT_EQ(table.refcount(frame), 1u);
  table.unlock(frame);
  EXPECT_FALSE(table.locked(frame));
}

TEST(FrameTable, LocksOfDifferentFramesAreIndependent) {
  FrameTable table = unwrap(FrameTable::create(64));
  table.lock(FrameId(1), HostWaiter::instance());
  ScriptedWaiter waiter(1, [] {});
  table.lock(FrameId(2), waiter);
  EXPECT_EQ(waiter.spins(), 0);
  EXPECT_TRUE(table.locked(FrameId(1)));
  EXPECT_TRUE(table.locked(FrameId(2)));
  table.unlock(FrameId(1));
  EXPECT_TRUE(table.locked(FrameId(2)));
  table.unlock(FrameId(2));
}

}  // namespace
}  // namespace vmfork::testing
