// A vCPU that initiates a shootdown flushes its own translations itself,
// with no request (DESIGN section 6): all of them for an all-context
// shootdown, those of one EPTP for a single-context one.
#include <gtest/gtest.h>

#include <memory>

#include "base/types.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/shootdown.h"
#include "ept/tlb.h"

namespace vmfork {
namespace {

const Eptp kEptpA = Eptp::for_root(FrameId(0x10));
const Eptp kEptpB = Eptp::for_root(FrameId(0x11));
constexpr Gfn kGfn(0x40);
constexpr FrameId kFrame(0x500);

class ShootdownInitiatorTest : public ::testing::Test {
 protected:
  ShootdownInitiatorTest() {
    EXPECT_TRUE(domain_.add(&target_));
    tlb_->insert(kEptpA, kGfn, kFrame, Access::kAll);
    tlb_->insert(kEptpB, Gfn(kGfn.value() + 1), kFrame, Access::kAll);
  }
  bool cached(Eptp eptp, Gfn gfn) const { return tlb_->lookup(eptp, gfn) != nullptr; }

  std::unique_ptr<TranslationCache> tlb_ = std::make_unique<TranslationCache>();
  ShootdownTarget target_{*tlb_};
  ShootdownDomain domain_;
  TargetWaiter waiter_{target_};
};

TEST_F(ShootdownInitiatorTest, AllContextFlushesEveryContextOfTheInitiator) {
  ShootdownBatch batch = ShootdownBatch::all_context(domain_, waiter_);
  EXPECT_FALSE(target_.pending()) << "the initiator posts no request to itself";
  EXPECT_FALSE(cached(kEptpA, kGfn));
  EXPECT_FALSE(cached(kEptpB, Gfn(kGfn.value() + 1)));
  (void)batch.wait(waiter_);
}

TEST_F(ShootdownInitiatorTest, SingleContextFlushesOnlyThatContextOfTheInitiator) {
  ShootdownBatch batch = ShootdownBatch::single_context(domain_, kEptpA, waiter_);
  EXPECT_FALSE(target_.pending()) << "the initiator posts no request to itself";
  EXPECT_FALSE(cached(kEptpA, kGfn));
  EXPECT_TRUE(cached(kEptpB, Gfn(kGfn.value() + 1)));
  (void)batch.wait(waiter_);
}

}  // namespace
}  // namespace vmfork
