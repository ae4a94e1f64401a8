// FrameTable's per-frame lock between threads: it excludes, and a waiter
// keeps being called while the holder runs.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "guestmm/frame_table.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

class CountingWaiter final : public Waiter {
 public:
  void on_wait() override {
    spins_.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::yield();
  }
  uint64_t spins() const { return spins_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> spins_{0};
};

TEST(FrameTableConcurrency, LockWaitsInTheWaiterUntilTheHolderUnlocks) {
  FrameTable table = unwrap(FrameTable::create(16));
  const FrameId frame(4);
  table.set_allocated(frame);
  table.lock(frame, HostWaiter::instance());

  CountingWaiter waiter;
  std::atomic<bool> acquired{false};
  std::thread contender([&] {
    table.lock(frame, waiter);
    acquired.store(true, std::memory_order_release);
    table.unlock(frame);
  });
  // The contender is spinning in our waiter: it cannot have the lock.
  while (waiter.spins() < 100)
    std::this_thread::yield();
  EXPECT_FALSE(acquired.load(std::memory_order_acquire));
  table.unlock(frame);
  contender.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_FALSE(table.locked(frame));
  EXPECT_EQ(table.refcount(frame), 1u);
}

TEST(FrameTableConcurrency, LockExcludesAndReferencesAreNotLost) {
  FrameTable table = unwrap(FrameTable::create(16));
  const FrameId frame(4);
  table.set_allocated(frame);
  const int rounds = 200'000 / kSanitizerSlowdown;
  uint64_t guarded = 0;  // protected by the frame's lock
  SpinBarrier start(2);
  auto body = [&] {
    start.arrive_and_wait();
    for (int i = 0; i < rounds; ++i) {
      table.lock(frame, HostWaiter::instance());
      ++guarded;
      table.unlock(frame);
      table.get(frame);  // counts move concurrently with the lock bit
      EXPECT_FALSE(table.put(frame));
    }
  };
  std::thread a(body);
  std::thread b(body);
  a.join();
  b.join();
  EXPECT_EQ(guarded, 2u * static_cast<uint64_t>(rounds));
  EXPECT_EQ(table.refcount(frame), 1u);
  EXPECT_FALSE(table.locked(frame));
}

}  // namespace
}  // namespace vmfork::testing
