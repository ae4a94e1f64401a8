// INVEPT shootdown (DESIGN section 6), the parts that need no second thread:
// the initiator and the target are the same thread here. The cross-thread
// behaviours are in shootdown_concurrency_test.cc.
#include "ept/shootdown.h"

#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "base/types.h"
#include "base/waiter.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/tlb.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

const Eptp kEptpA = Eptp::for_root(FrameId(0x10));
const Eptp kEptpB = Eptp::for_root(FrameId(0x11));
const Eptp kEptpC = Eptp::for_root(FrameId(0x12));
constexpr Gfn kGfn(0x40);
constexpr FrameId kFrame(0x500);

// One vCPU's translation cache and shootdown target.
struct Vcpu {
  std::unique_ptr<TranslationCache> tlb = std::make_unique<TranslationCache>();
  ShootdownTarget target{*tlb};

  void cache(Eptp eptp, Gfn gfn = kGfn) { tlb->insert(eptp, gfn, kFrame, Access::kAll); }
  bool cached(Eptp eptp, Gfn gfn = kGfn) const { return tlb->lookup(eptp, gfn) != nullptr; }
};

class ShootdownTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

  Vcpu vcpu_;
  ShootdownDomain domain_;
  HostWaiter waiter_;
};
using ShootdownDeathTest = ShootdownTest;

TEST_F(ShootdownTest, NothingIsPendingAtFirst) {
  EXPECT_FALSE(vcpu_.target.pending());
  EXPECT_FALSE(vcpu_.target.service());
  EXPECT_EQ(vcpu_.target.serviced(), 0u);
  EXPECT_EQ(vcpu_.tlb->flushes(), 0u);
}

TEST_F(ShootdownTest, ARequestIsPendingUntilServiced) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA);
  EXPECT_TRUE(vcpu_.target.pending());
  EXPECT_TRUE(vcpu_.target.service());
  EXPECT_FALSE(vcpu_.target.pending());
  EXPECT_FALSE(vcpu_.target.service()) << "nothing left to service";
  EXPECT_EQ(vcpu_.target.serviced(), 1u);
  batch.wait(waiter_);
}

TEST_F(ShootdownTest, SingleContextFlushesOnlyThatEptp) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  vcpu_.cache(kEptpA);
  vcpu_.cache(kEptpB, kGfn + 1);
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA);
  ASSERT_TRUE(vcpu_.target.service());
  batch.wait(waiter_);
  EXPECT_FALSE(vcpu_.cached(kEptpA));
  EXPECT_TRUE(vcpu_.cached(kEptpB, kGfn + 1));
}

TEST_F(ShootdownTest, RequestsForTwoContextsBeforeAServiceFlushBoth) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  vcpu_.cache(kEptpA);
  vcpu_.cache(kEptpB, kGfn + 1);
  ShootdownBatch first = ShootdownBatch::single_context(domain_, kEptpA);
  ShootdownBatch second = ShootdownBatch::single_context(domain_, kEptpB);
  ASSERT_TRUE(vcpu_.target.service());
  EXPECT_FALSE(vcpu_.target.pending()) << "one service acknowledges both";
  EXPECT_FALSE(vcpu_.cached(kEptpA));
  EXPECT_FALSE(vcpu_.cached(kEptpB, kGfn + 1));
  first.wait(waiter_);
  second.wait(waiter_);
}

TEST_F(ShootdownTest, TwoRequestsForOneContextStaySingleContext) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  vcpu_.cache(kEptpA);
  vcpu_.cache(kEptpC, kGfn + 1);
  ShootdownBatch first = ShootdownBatch::single_context(domain_, kEptpA);
  ShootdownBatch second = ShootdownBatch::single_context(domain_, kEptpA);
  ASSERT_TRUE(vcpu_.target.service());
  EXPECT_FALSE(vcpu_.cached(kEptpA));
  EXPECT_TRUE(vcpu_.cached(kEptpC, kGfn + 1));
  first.wait(waiter_);
  second.wait(waiter_);
}

TEST_F(ShootdownTest, ServicingFlushesTheTranslationCacheOncePerService) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA);
  ASSERT_TRUE(vcpu_.target.service());
  EXPECT_EQ(vcpu_.tlb->flushes(), 1u)
      << "caches derived from translations learn of the flush through flushes()";
  batch.wait(waiter_);
}

TEST_F(ShootdownTest, TargetWaiterServicesItsOwnTarget) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  vcpu_.cache(kEptpA);
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA);
  TargetWaiter waiter(vcpu_.target);
  waiter.on_wait();
  EXPECT_FALSE(vcpu_.target.pending());
  EXPECT_FALSE(vcpu_.cached(kEptpA));
  batch.wait(waiter);
}

TEST_F(ShootdownTest, AVcpuShootingItselfDownFinishesWithATargetWaiter) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  vcpu_.cache(kEptpA);
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA);
  TargetWaiter waiter(vcpu_.target);
  batch.wait(waiter);
  EXPECT_FALSE(vcpu_.cached(kEptpA));
}

TEST_F(ShootdownTest, AnInitiatingVcpuFlushesItselfWithoutPostingARequest) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  vcpu_.cache(kEptpA);
  TargetWaiter waiter(vcpu_.target);
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA, waiter);
  EXPECT_FALSE(vcpu_.cached(kEptpA)) << "flushed when the batch was made";
  EXPECT_FALSE(vcpu_.target.pending()) << "no request to itself";
  EXPECT_EQ(vcpu_.target.serviced(), 0u);
  batch.wait(waiter);
}

TEST_F(ShootdownTest, ContextsRequestedEarlierStayInTheFlushSet) {
  // The target never writes the request line, so the set of contexts to
  // flush only grows: a later request for one context flushes both.
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  ShootdownBatch first = ShootdownBatch::single_context(domain_, kEptpA);
  ASSERT_TRUE(vcpu_.target.service());
  first.wait(waiter_);
  vcpu_.cache(kEptpA);
  vcpu_.cache(kEptpB, kGfn + 1);
  ShootdownBatch second = ShootdownBatch::single_context(domain_, kEptpB);
  ASSERT_TRUE(vcpu_.target.service());
  second.wait(waiter_);
  EXPECT_FALSE(vcpu_.cached(kEptpB, kGfn + 1));
  EXPECT_FALSE(vcpu_.cached(kEptpA)) << "flushing more than asked is always correct";
}

TEST_F(ShootdownTest, BatchOverAnEmptyDomainCompletesAtOnce) {
  ShootdownBatch batch = ShootdownBatch::all_context(domain_);
  batch.wait(waiter_);
  SUCCEED();
}

TEST_F(ShootdownTest, ParkedTargetIsNotKicked) {
  int kicks = 0;
  vcpu_.target.set_kick([&] { ++kicks; });
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  vcpu_.target.park();
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA);
  batch.wait(waiter_);
  EXPECT_EQ(kicks, 0);
  vcpu_.target.resume();
}

TEST_F(ShootdownTest, ParkedTargetFlushesOnResume) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  vcpu_.cache(kEptpA);
  vcpu_.target.park();
  EXPECT_FALSE(vcpu_.target.running());
  ShootdownBatch batch = ShootdownBatch::all_context(domain_);
  batch.wait(waiter_);
  EXPECT_TRUE(vcpu_.cached(kEptpA)) << "a parked vCPU flushes when it resumes, not before";
  vcpu_.target.resume();
  EXPECT_TRUE(vcpu_.target.running());
  EXPECT_FALSE(vcpu_.cached(kEptpA));
  EXPECT_FALSE(vcpu_.target.pending());
}

TEST_F(ShootdownTest, ATargetAddedToAFreedSlotGetsRequests) {
  Vcpu other;
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  domain_.remove(&vcpu_.target);
  EXPECT_TRUE(domain_.add(&other.target));
  EXPECT_EQ(domain_.size(), 1u) << "the freed slot is reused";
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA);
  EXPECT_FALSE(vcpu_.target.pending());
  EXPECT_TRUE(other.target.pending());
  ASSERT_TRUE(other.target.service());
  batch.wait(waiter_);
}

TEST_F(ShootdownTest, AMovedFromBatchNeedsNoWait) {
  EXPECT_TRUE(domain_.add(&vcpu_.target));
  ShootdownBatch first = ShootdownBatch::single_context(domain_, kEptpA);
  ShootdownBatch second(std::move(first));
  ASSERT_TRUE(vcpu_.target.service());
  second.wait(waiter_);
}

TEST_F(ShootdownDeathTest, DestroyingAnUnwaitedBatchAsserts) {
  EXPECT_DEATH({ ShootdownBatch batch = ShootdownBatch::all_context(domain_); },
               "never waited for");
}

TEST_F(ShootdownDeathTest, SingleContextWithoutAnEptpAsserts) {
  EXPECT_DEATH(
      {
        ShootdownBatch batch = ShootdownBatch::single_context(domain_, Eptp());
        batch.wait(waiter_);
      },
      "Assertion");
}

}  // namespace
}  // namespace vmfork
