// FramePool: one sparse memfd; recycled frames first; zeroing on request;
// clean exhaustion; population ahead of demand.
#include "guestmm/frame_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "test_support.h"

namespace vmfork::testing {
namespace {

std::unique_ptr<FramePool> make_pool(uint64_t frames, Populate populate = Populate::kOnDemand) {
  FramePoolOptions options;
  options.capacity_bytes = frames * kPageSize;
  options.populate = populate;
  return unwrap(FramePool::create(options));
}

bool all_zero(const std::byte* data) {
  return std::all_of(data, data + kPageSize, [](std::byte b) { return b == std::byte{0}; });
}

TEST(FramePool, AllocatesDistinctFramesUpToCapacity) {
  std::unique_ptr<FramePool> pool = make_pool(16);
  EXPECT_EQ(pool->capacity_frames(), 16u);
  EXPECT_EQ(pool->available_frames(), 16u);
  std::set<FrameId> seen;
  for (int i = 0; i < 16; ++i) {
    const FrameId frame = unwrap(pool->allocate(Zeroed::kNo));
    EXPECT_LT(frame.index(), 16u);
    EXPECT_TRUE(seen.insert(frame).second) << "frame " << frame.index() << " handed out twice";
  }
  EXPECT_EQ(pool->available_frames(), 0u);
}

TEST(FramePool, ReleasedFrameIsRecycledBeforeFreshOnes) {
  std::unique_ptr<FramePool> pool = make_pool(16);
  const FrameId a = unwrap(pool->allocate(Zeroed::kNo));
  const FrameId b = unwrap(pool->allocate(Zeroed::kNo));
  const FrameId c = unwrap(pool->allocate(Zeroed::kNo));
  pool->release(b);
  EXPECT_EQ(pool->available_frames(), 14u);
  EXPECT_FALSE(pool->free_list_empty());
  EXPECT_EQ(unwrap(pool->allocate(Zeroed::kNo)), b);
  EXPECT_TRUE(pool->free_list_empty());
  // Then fresh frames again, none of the ones still held.
  const FrameId d = unwrap(pool->allocate(Zeroed::kNo));
  EXPECT_NE(d, a);
  EXPECT_NE(d, b);
  EXPECT_NE(d, c);
}

TEST(FramePool, RecyclesMostRecentlyReleasedFirst) {
  std::unique_ptr<FramePool> pool = make_pool(16);
  const FrameId a = unwrap(pool->allocate(Zeroed::kNo));
  const FrameId b = unwrap(pool->allocate(Zeroed::kNo));
  pool->release(a);
  pool->release(b);
  EXPECT_EQ(unwrap(pool->allocate(Zeroed::kNo)), b);
  EXPECT_EQ(unwrap(pool->allocate(Zeroed::kNo)), a);
}

TEST(FramePool, FreshFrameIsZero) {
  std::unique_ptr<FramePool> pool = make_pool(16);
  const FrameId frame = unwrap(pool->allocate(Zeroed::kNo));
  EXPECT_TRUE(all_zero(pool->data(frame)));
}

TEST(FramePool, ZeroedYesClearsARecycledDirtyFrame) {
  std::unique_ptr<FramePool> pool = make_pool(16);
  const FrameId frame = unwrap(pool->allocate(Zeroed::kNo));
  std::memset(pool->data(frame), 0xa5, kPageSize);
  pool->release(frame);
  const FrameId again = unwrap(pool->allocate(Zeroed::kYes));
  ASSERT_EQ(again, frame) << "the test needs the dirty frame to be recycled";
  EXPECT_TRUE(all_zero(pool->data(again)));
}

TEST(FramePool, DataOfAFrameIsItsPoolOffsetInTheMapping) {
  std::unique_ptr<FramePool> pool = make_pool(16);
  const FrameId a = unwrap(pool->allocate(Zeroed::kNo));
  const FrameId b = unwrap(pool->allocate(Zeroed::kNo));
  EXPECT_EQ(pool->data(b) - pool->data(a), static_cast<std::ptrdiff_t>(b.pool_offset()) -
                                               static_cast<std::ptrdiff_t>(a.pool_offset()));
  EXPECT_GE(pool->fd(), 0);
}

TEST(FramePool, ExhaustionIsOutOfFramesWithAMessage) {
  std::unique_ptr<FramePool> pool = make_pool(8);
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(IsOk(pool->allocate(Zeroed::kNo)));
  const Result<FrameId> none = pool->allocate(Zeroed::kNo);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kOutOfFrames);
  EXPECT_FALSE(none.error().message.empty());
  // A failed allocation consumes nothing.
  EXPECT_EQ(pool->available_frames(), 0u);
  EXPECT_EQ(pool->allocate(Zeroed::kYes).error().code, ErrorCode::kOutOfFrames);
  EXPECT_EQ(pool->available_frames(), 0u);
}

TEST(FramePool, StillAllocatesAfterExhaustionOnceFramesAreReleased) {
  std::unique_ptr<FramePool> pool = make_pool(8);
  std::vector<FrameId> frames;
  for (int i = 0; i < 8; ++i)
    frames.push_back(unwrap(pool->allocate(Zeroed::kNo)));
  ASSERT_FALSE(pool->allocate(Zeroed::kNo).ok());
  pool->release(frames[3]);
  pool->release(frames[5]);
  EXPECT_EQ(pool->available_frames(), 2u);
  std::set<FrameId> again{unwrap(pool->allocate(Zeroed::kYes)),
                          unwrap(pool->allocate(Zeroed::kYes))};
  EXPECT_EQ(again, (std::set<FrameId>{frames[3], frames[5]}));
  EXPECT_EQ(pool->allocate(Zeroed::kNo).error().code, ErrorCode::kOutOfFrames);
}

TEST(FramePool, ZeroCapacityIsInvalidArgument) {
  FramePoolOptions options;
  options.capacity_bytes = 0;
  const Result<std::unique_ptr<FramePool>> pool = FramePool::create(options);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(pool.error().message.empty());
}

TEST(FramePool, CapacityBelowOneFrameIsInvalidArgument) {
  FramePoolOptions options;
  options.capacity_bytes = kPageSize - 1;
  const Result<std::unique_ptr<FramePool>> pool = FramePool::create(options);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.error().code, ErrorCode::kInvalidArgument);
}

TEST(FramePool, OnDemandPopulatesNothingAhead) {
  std::unique_ptr<FramePool> pool = make_pool(1024, Populate::kOnDemand);
  ASSERT_TRUE(IsOk(pool->allocate(Zeroed::kNo)));
  EXPECT_EQ(pool->populated_frames(), 0u);
}

// Polls `done` until it holds or `timeout` passes. Timing is never the
// verdict: the deadline only bounds how long the test waits for the
// background thread.
template <class Predicate>
bool eventually(Predicate done, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(FramePool, AheadPopulatesBeyondWhatWasAllocated) {
  constexpr uint64_t kFrames = 8192;       // 32 MiB
  constexpr uint64_t kAheadFrames = 1024;  // 4 MiB
  FramePoolOptions options;
  options.capacity_bytes = kFrames * kPageSize;
  options.populate = Populate::kAhead;
  options.populate_ahead_bytes = kAheadFrames * kPageSize;
  std::unique_ptr<FramePool> pool = unwrap(FramePool::create(options));

  ASSERT_TRUE(IsOk(pool->allocate(Zeroed::kNo)));
  EXPECT_TRUE(eventually([&] { return pool->populated_frames() > 1; }))
      << "populated " << pool->populated_frames();
  EXPECT_LE(pool->populated_frames(), 1 + kAheadFrames) << "populated further than asked";

  // As allocation moves on, population keeps ahead of it.
  constexpr uint64_t kAllocated = 3000;
  for (uint64_t i = 1; i < kAllocated; ++i)
    ASSERT_TRUE(IsOk(pool->allocate(Zeroed::kNo)));
  EXPECT_TRUE(eventually([&] { return pool->populated_frames() > kAllocated; }))
      << "populated " << pool->populated_frames() << " of " << kAllocated << " allocated";
  EXPECT_LE(pool->populated_frames(), std::min(kFrames, kAllocated + kAheadFrames));
}

TEST(FramePool, AheadPopulationStopsAtCapacity) {
  constexpr uint64_t kFrames = 1024;
  FramePoolOptions options;
  options.capacity_bytes = kFrames * kPageSize;
  options.populate = Populate::kAhead;
  options.populate_ahead_bytes = 64 * kMiB;  // more than the pool
  std::unique_ptr<FramePool> pool = unwrap(FramePool::create(options));
  EXPECT_TRUE(eventually([&] { return pool->populated_frames() == kFrames; }))
      << "populated " << pool->populated_frames();
  EXPECT_EQ(pool->populated_frames(), kFrames);
}

}  // namespace
}  // namespace vmfork::testing
