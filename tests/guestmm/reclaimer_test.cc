// Reclaimer (DESIGN section 5): a frame with no references left is released
// only once every online participant has passed a quiescent point after it
// was retired.
#include "guestmm/reclaimer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kFrames = 64;
// Enough collections to release anything nobody holds back: the epoch must
// advance twice past a frame's retirement, at most once per collect().
constexpr int kEnoughCollects = 3;

class ReclaimerTest : public ::testing::Test {
 protected:
  ReclaimerTest()
      : reclaimer_(unwrap(Reclaimer::create(kFrames, [this](FrameId frame, FrameKind kind) {
          released_.push_back(frame);
          kinds_.push_back(kind);
        }))) {}

  void collect(int times) {
    for (int i = 0; i < times; ++i)
      reclaimer_.collect();
  }
  bool released(FrameId frame) const {
    return std::find(released_.begin(), released_.end(), frame) != released_.end();
  }

  // Declared before reclaimer_, which captures `this` to append to them.
  std::vector<FrameId> released_;
  std::vector<FrameKind> kinds_;
  Reclaimer reclaimer_;
};

TEST_F(ReclaimerTest, WithNoParticipantsAFrameIsReleasedAfterCollection) {
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  EXPECT_EQ(reclaimer_.pending(), 1u);
  collect(kEnoughCollects);
  EXPECT_EQ(released_, std::vector<FrameId>{FrameId(5)});
  EXPECT_EQ(kinds_, std::vector<FrameKind>{FrameKind::kData});
  EXPECT_EQ(reclaimer_.pending(), 0u);
}

TEST_F(ReclaimerTest, ReleasesEachFrameOnceWithItsKind) {
  reclaimer_.retire(FrameId(1), FrameKind::kTable);
  reclaimer_.retire(FrameId(2), FrameKind::kData);
  collect(kEnoughCollects);
  collect(kEnoughCollects);
  ASSERT_EQ(released_.size(), 2u);
  for (size_t i = 0; i < released_.size(); ++i) {
    EXPECT_EQ(kinds_[i], released_[i] == FrameId(1) ? FrameKind::kTable : FrameKind::kData);
  }
}

TEST_F(ReclaimerTest, RetiredFrameIsNotReleasedBeforeTheEpochMovesOn) {
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  // One collection advances the epoch once; the frame needs two.
  EXPECT_EQ(reclaimer_.collect(), 0u);
  EXPECT_FALSE(released(FrameId(5)));
  EXPECT_EQ(reclaimer_.pending(), 1u);
}

TEST_F(ReclaimerTest, OnlineParticipantBehindTheRetireBlocksRelease) {
  Reclaimer::Participant* vcpu = reclaimer_.join();
  ASSERT_NE(vcpu, nullptr);
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  collect(10);
  EXPECT_FALSE(released(FrameId(5))) << "released while a vCPU could still hold it";
  EXPECT_EQ(reclaimer_.pending(), 1u);
  reclaimer_.leave(vcpu);
}

TEST_F(ReclaimerTest, QuiescentPointAfterTheRetireAllowsRelease) {
  Reclaimer::Participant* vcpu = reclaimer_.join();
  ASSERT_NE(vcpu, nullptr);
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  collect(4);
  ASSERT_FALSE(released(FrameId(5)));
  // The vCPU passes one quiescent point, then collection completes.
  reclaimer_.quiescent(*vcpu);
  collect(kEnoughCollects);
  EXPECT_TRUE(released(FrameId(5)));
  EXPECT_EQ(reclaimer_.pending(), 0u);
  reclaimer_.leave(vcpu);
}

TEST_F(ReclaimerTest, ParticipantThatKeepsPassingQuiescentPointsNeverBlocks) {
  Reclaimer::Participant* vcpu = reclaimer_.join();
  ASSERT_NE(vcpu, nullptr);
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  for (int i = 0; i < kEnoughCollects; ++i) {
    reclaimer_.quiescent(*vcpu);  // the vCPU runs basic blocks meanwhile
    reclaimer_.collect();
  }
  EXPECT_TRUE(released(FrameId(5)));
  reclaimer_.leave(vcpu);
}

TEST_F(ReclaimerTest, QuiescentPointBeforeTheRetireDoesNotCount) {
  Reclaimer::Participant* vcpu = reclaimer_.join();
  ASSERT_NE(vcpu, nullptr);
  reclaimer_.collect();                             // the epoch moves on
  reclaimer_.quiescent(*vcpu);                      // the vCPU catches up...
  reclaimer_.retire(FrameId(5), FrameKind::kData);  // ...then a frame is retired
  collect(10);
  EXPECT_FALSE(released(FrameId(5)));
  reclaimer_.leave(vcpu);
}

TEST_F(ReclaimerTest, OfflineParticipantNeverBlocks) {
  Reclaimer::Participant* vcpu = reclaimer_.join();
  ASSERT_NE(vcpu, nullptr);
  reclaimer_.offline(*vcpu);  // halted or paused
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  collect(kEnoughCollects);
  EXPECT_TRUE(released(FrameId(5)));
  reclaimer_.leave(vcpu);
}

TEST_F(ReclaimerTest, ParticipantBackOnlineBlocksFramesRetiredAfterward) {
  Reclaimer::Participant* vcpu = reclaimer_.join();
  ASSERT_NE(vcpu, nullptr);
  reclaimer_.offline(*vcpu);
  reclaimer_.quiescent(*vcpu);  // resumes
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  collect(10);
  EXPECT_FALSE(released(FrameId(5)));
  reclaimer_.leave(vcpu);
}

TEST_F(ReclaimerTest, LeaveUnblocksReclamation) {
  Reclaimer::Participant* vcpu = reclaimer_.join();
  ASSERT_NE(vcpu, nullptr);
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  collect(4);
  ASSERT_FALSE(released(FrameId(5)));
  reclaimer_.leave(vcpu);
  collect(kEnoughCollects);
  EXPECT_TRUE(released(FrameId(5)));
}

TEST_F(ReclaimerTest, OneLaggingParticipantAmongSeveralBlocks) {
  Reclaimer::Participant* fast = reclaimer_.join();
  Reclaimer::Participant* slow = reclaimer_.join();
  ASSERT_NE(fast, nullptr);
  ASSERT_NE(slow, nullptr);
  ASSERT_NE(fast, slow);
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  for (int i = 0; i < 10; ++i) {
    reclaimer_.quiescent(*fast);
    reclaimer_.collect();
  }
  EXPECT_FALSE(released(FrameId(5)));
  reclaimer_.quiescent(*slow);
  for (int i = 0; i < kEnoughCollects; ++i) {
    reclaimer_.quiescent(*fast);
    reclaimer_.collect();
  }
  EXPECT_TRUE(released(FrameId(5)));
  reclaimer_.leave(fast);
  reclaimer_.leave(slow);
}

TEST_F(ReclaimerTest, JoinHandsOutEveryParticipantSlotOnceThenFails) {
  std::vector<Reclaimer::Participant*> joined;
  for (size_t i = 0; i < Reclaimer::kMaxParticipants; ++i) {
    Reclaimer::Participant* participant = reclaimer_.join();
    ASSERT_NE(participant, nullptr);
    joined.push_back(participant);
  }
  EXPECT_EQ(reclaimer_.join(), nullptr);
  reclaimer_.leave(joined[17]);
  EXPECT_EQ(reclaimer_.join(), joined[17]) << "a slot that was left is reused";
  for (Reclaimer::Participant* participant : joined)
    reclaimer_.leave(participant);
}

TEST_F(ReclaimerTest, LeavingIsAQuiescentPointForThatParticipant) {
  Reclaimer::Participant* vcpu = reclaimer_.join();
  ASSERT_NE(vcpu, nullptr);
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  collect(4);
  ASSERT_FALSE(released(FrameId(5)));
  reclaimer_.leave(vcpu);  // the VM ended: its vCPU holds nothing any more
  collect(kEnoughCollects);
  EXPECT_TRUE(released(FrameId(5)));
}

// Before host walks had slots of their own, 1024 vCPUs (soft clones) made
// every later host walk (a fork's write of the clone id) spin for ever.
TEST_F(ReclaimerTest, AHostWalkStartsWithEveryVcpuSlotTaken) {
  std::vector<Reclaimer::Participant*> vcpus;
  for (size_t i = 0; i < Reclaimer::kMaxParticipants; ++i) {
    vcpus.push_back(reclaimer_.join());
    ASSERT_NE(vcpus.back(), nullptr);
  }
  ASSERT_EQ(reclaimer_.join(), nullptr);
  {
    HostWalkGuard walk(reclaimer_);  // returns at once (ctest's timeout bounds a hang)
  }
  for (Reclaimer::Participant* vcpu : vcpus)
    reclaimer_.leave(vcpu);
}

TEST_F(ReclaimerTest, AHostWalkHoldsBackReleaseUntilItEnds) {
  std::optional<HostWalkGuard> walk(std::in_place, reclaimer_);
  reclaimer_.retire(FrameId(5), FrameKind::kData);
  collect(10);
  EXPECT_FALSE(released(FrameId(5))) << "released under a host walk that could hold it";
  walk.reset();
  collect(kEnoughCollects);
  EXPECT_TRUE(released(FrameId(5)));
}

TEST_F(ReclaimerTest, AHostWalkWaitsForASlotUntilAnotherWalkEnds) {
  std::vector<Reclaimer::Participant*> walks;
  for (size_t i = 0; i < Reclaimer::kHostWalkSlots; ++i)
    walks.push_back(reclaimer_.join_host_walk());
  std::atomic<bool> walked{false};
  std::thread late([&] {
    HostWalkGuard walk(reclaimer_);
    walked.store(true);
  });
  // Not a timing check: the late walk may not have started yet; either way
  // it cannot have a slot.
  std::this_thread::yield();
  EXPECT_FALSE(walked.load());
  reclaimer_.leave(walks.back());
  walks.pop_back();
  late.join();  // it got the slot given back
  EXPECT_TRUE(walked.load());
  for (Reclaimer::Participant* walk : walks)
    reclaimer_.leave(walk);
}

TEST_F(ReclaimerTest, CollectReportsHowManyItReleased) {
  for (uint64_t i = 0; i < 10; ++i)
    reclaimer_.retire(FrameId(i), FrameKind::kData);
  uint64_t total = 0;
  for (int i = 0; i < kEnoughCollects; ++i)
    total += reclaimer_.collect();
  EXPECT_EQ(total, 10u);
  EXPECT_EQ(released_.size(), 10u);
}

}  // namespace
}  // namespace vmfork::testing
