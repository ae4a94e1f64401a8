// The leaf lock's exclusion with a deadline: a second locker of a held slot
// stays out. ASecondLockOnTheSameSlotWaitsUntilTheFirstIsReleased checks the
// same thing but waits for the second locker to spin, so a lock that ignores
// the busy bit hangs it; this one fails at once (tests/mutation).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>

#include "base/waiter.h"
#include "ept/ept_entry.h"
#include "ept/leaf_lock.h"

namespace vmfork {
namespace {

TEST(LeafLockExclusionTest, ASecondLockerStaysOutWhileTheSlotIsHeld) {
  std::atomic<uint64_t> slot{0};
  std::atomic<bool> second_acquired{false};
  std::optional<LeafLock> first;
  first.emplace(slot, HostWaiter::instance());
  std::thread second([&] {
    HostWaiter waiter;
    LeafLock lock(slot, waiter);
    second_acquired.store(true);
  });
  // Long enough for the second thread to try many times, even descheduled.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (!second_acquired.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(second_acquired.load()) << "the second locker got in while the first held the slot";
  first.reset();
  second.join();
  EXPECT_TRUE(second_acquired.load());
  EXPECT_FALSE(EptEntry(slot.load()).locked());
}

}  // namespace
}  // namespace vmfork
