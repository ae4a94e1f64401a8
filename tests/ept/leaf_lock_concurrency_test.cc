// LeafLock across threads: the busy bit serializes every holder of one
// guest page, and a waiter spins through its Waiter.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "base/types.h"
#include "base/waiter.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/leaf_lock.h"
#include "tests/ept/concurrency_scale.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

using ept_test::scaled;

constexpr FrameId kFrame(0x100);

// Counts its spins, and yields so the holder gets a core.
class CountingWaiter final : public Waiter {
 public:
  void on_wait() override {
    waits_.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::yield();
  }
  uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> waits_{0};
};

TEST(LeafLockConcurrencyTest, ASecondLockOnTheSameSlotWaitsUntilTheFirstIsReleased) {
  std::atomic<uint64_t> slot{0};
  CountingWaiter second_waiter;
  std::atomic<bool> second_acquired{false};
  EptEntry seen_by_second;
  std::thread second;
  {
    LeafLock first(slot, HostWaiter::instance());
    second = std::thread([&] {
      LeafLock lock(slot, second_waiter);
      second_acquired.store(true);
      seen_by_second = lock.entry();
    });
    while (second_waiter.waits() < 3) {
      std::this_thread::yield();
    }
    EXPECT_FALSE(second_acquired.load()) << "the second holder got in while the first held it";
    first.install(EptEntry::leaf(kFrame, Access::kRead));
  }
  second.join();
  EXPECT_TRUE(second_acquired.load());
  EXPECT_EQ(seen_by_second, EptEntry::leaf(kFrame, Access::kRead))
      << "the second holder sees what the first wrote";
  EXPECT_FALSE(EptEntry(slot.load()).locked());
}

TEST(LeafLockConcurrencyTest, HoldersAreMutuallyExclusive) {
  const int kRounds = scaled(20000);
  std::atomic<uint64_t> slot{EptEntry::leaf(kFrame, Access::kAll).raw()};
  std::atomic<bool> inside{false};
  std::atomic<int> overlaps{0};
  uint64_t counter = 0;  // protected by the leaf lock alone
  std::atomic<int> ready{0};
  auto run = [&] {
    HostWaiter waiter;
    // Start together, so that the two threads contend from the first round.
    ready.fetch_add(1);
    while (ready.load() < 2) {
      cpu_relax();
    }
    for (int i = 0; i < kRounds; ++i) {
      LeafLock lock(slot, waiter);
      if (inside.exchange(true, std::memory_order_relaxed)) {
        overlaps.fetch_add(1);
      }
      ++counter;
      inside.store(false, std::memory_order_relaxed);
    }
  };
  std::thread a(run);
  std::thread b(run);
  a.join();
  b.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, 2 * static_cast<uint64_t>(kRounds));
  EXPECT_EQ(EptEntry(slot.load()), EptEntry::leaf(kFrame, Access::kAll));
}

}  // namespace
}  // namespace vmfork
