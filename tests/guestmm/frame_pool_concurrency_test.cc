// FramePool under concurrent allocate/release: the lock-free free list never
// hands one frame to two holders.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "guestmm/frame_pool.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kFrames = 48;
constexpr size_t kHeldPerThread = 32;  // 2 x 32 > 48: the threads also meet exhaustion

struct Outcome {
  uint64_t allocations = 0;
  uint64_t exhausted = 0;
  uint64_t double_handouts = 0;
  uint64_t clobbered = 0;
};

void churn(FramePool& pool, std::vector<std::atomic<uint32_t>>& owner, uint32_t me, int rounds,
           SpinBarrier& start, Outcome& outcome) {
  std::vector<FrameId> held;
  held.reserve(kHeldPerThread);
  start.arrive_and_wait();
  for (int round = 0; round < rounds; ++round) {
    // Take a varying number of frames, stamp each, then give them back in a
    // varying order so the free list's head keeps moving under the other
    // thread.
    const size_t want = 1 + static_cast<size_t>(round) % kHeldPerThread;
    while (held.size() < want) {
      Result<FrameId> frame = pool.allocate(round % 3 == 0 ? Zeroed::kYes : Zeroed::kNo);
      if (!frame.ok()) {
        ++outcome.exhausted;
        break;
      }
      ++outcome.allocations;
      uint32_t expected = 0;
      if (!owner[frame->index()].compare_exchange_strong(expected, me, std::memory_order_acq_rel)) {
        ++outcome.double_handouts;
        continue;  // not ours to release
      }
      std::memset(pool.data(*frame), static_cast<int>(me), 64);
      held.push_back(*frame);
    }
    while (!held.empty()) {
      const size_t pick = static_cast<size_t>(round) % held.size();
      const FrameId frame = held[pick];
      held[pick] = held.back();
      held.pop_back();
      for (int i = 0; i < 64; ++i) {
        if (pool.data(frame)[i] != static_cast<std::byte>(me)) {
          ++outcome.clobbered;
          break;
        }
      }
      owner[frame.index()].store(0, std::memory_order_release);
      pool.release(frame);
    }
  }
}

TEST(FramePoolConcurrency, TwoThreadsNeverGetTheSameFrame) {
  FramePoolOptions options;
  options.capacity_bytes = kFrames * kPageSize;
  options.populate = Populate::kOnDemand;
  std::unique_ptr<FramePool> pool = unwrap(FramePool::create(options));
  std::vector<std::atomic<uint32_t>> owner(kFrames);

  const int rounds = 40'000 / kSanitizerSlowdown;
  for (int attempt = 0; attempt < 5; ++attempt) {
    SpinBarrier start(2);
    Outcome a;
    Outcome b;
    std::thread first([&] { churn(*pool, owner, 1, rounds, start, a); });
    std::thread second([&] { churn(*pool, owner, 2, rounds, start, b); });
    first.join();
    second.join();

    EXPECT_EQ(a.double_handouts + b.double_handouts, 0u) << "a frame was handed out twice";
    EXPECT_EQ(a.clobbered + b.clobbered, 0u) << "a held frame was written by its other holder";
    EXPECT_GT(a.allocations, 0u);
    EXPECT_GT(b.allocations, 0u);
    // Every frame came back.
    EXPECT_EQ(pool->available_frames(), kFrames);
  }
  // And each can be allocated once more, exactly once.
  std::vector<bool> seen(kFrames);
  for (uint64_t i = 0; i < kFrames; ++i) {
    const FrameId frame = unwrap(pool->allocate(Zeroed::kNo));
    EXPECT_FALSE(seen[frame.index()]);
    seen[frame.index()] = true;
  }
  EXPECT_EQ(pool->allocate(Zeroed::kNo).error().code, ErrorCode::kOutOfFrames);
}

}  // namespace
}  // namespace vmfork::testing
