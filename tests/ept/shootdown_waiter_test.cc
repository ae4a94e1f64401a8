// A vCPU that waits keeps servicing its shootdowns (DESIGN section 6, "no
// deadlock by waiting"), checked without a second thread and without a
// wait that could hang: ShootdownConcurrencyTest.TwoVcpusShootingEachOther-
// DownBothFinish checks it end to end, behind a watchdog of a minute.
#include <gtest/gtest.h>

#include <memory>

#include "base/types.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/shootdown.h"
#include "ept/tlb.h"

namespace vmfork {
namespace {

const Eptp kEptp = Eptp::for_root(FrameId(0x10));
constexpr Gfn kGfn(0x40);

TEST(ShootdownWaiterTest, EveryWaitServicesTheWaitersOwnRequests) {
  auto tlb = std::make_unique<TranslationCache>();
  ShootdownTarget target(*tlb);
  ShootdownDomain domain;
  ASSERT_TRUE(domain.add(&target));
  tlb->insert(kEptp, kGfn, FrameId(0x500), Access::kAll);
  ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
  TargetWaiter waiter(target);
  waiter.on_wait();
  EXPECT_FALSE(target.pending()) << "a waiting vCPU left a request addressed to it pending";
  EXPECT_EQ(tlb->lookup(kEptp, kGfn), nullptr);
  target.service();  // the batch completes whatever on_wait() did
  (void)batch.wait(waiter);
}

}  // namespace
}  // namespace vmfork
