// The shootdown follows stage 1 (DESIGN section 4, steps 5 and 6): INVEPT
// only protects what was published before it. vCPUs B and C of one VM;
// page G is shared with the VM it was cloned from, so it is read-only, and
// C has cached a translation of G to F. B writes G and takes the COW fault.
// C runs basic blocks: it services shootdowns and reads G each time. If
// C acknowledged a shootdown before B published F2 (stage 1), B is held
// there until C has walked G again after acknowledging; then B finishes and
// writes. Once B's write completed (a flag set after it), C must read B's
// value. With the protocol no shootdown precedes stage 1, so B is never
// held, and the one that follows flushes C's translation to F. A shootdown
// posted and completed before stage 1 lets C cache F again, and C reads F
// after B's write to F2 completed.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/vcpu_memory.h"
#include "race_harness.h"

namespace vmfork::testing {
namespace {

constexpr Gpa kPage{0x20'0000};
constexpr uint64_t kBValue = 0x6262'6262'6262'6262;
constexpr int kAttempts = 5;

// One attempt; returns true if C read F after B's write to G completed.
bool c_read_stale_after_b_wrote() {
  auto [memory, origin] = make_race_memory();
  EXPECT_TRUE((*origin)->populate(kPage, kPageSize).ok());
  Result<std::unique_ptr<AddressSpace>> vm = (*origin)->clone("vm");
  EXPECT_TRUE(vm.ok());
  Result<std::unique_ptr<VcpuMemory>> b = VcpuMemory::create(**vm);
  Result<std::unique_ptr<VcpuMemory>> c = VcpuMemory::create(**vm);
  EXPECT_TRUE(b.ok() && c.ok());
  EXPECT_EQ(guest_load(**c, kPage), 0u);  // C caches G -> F
  const uint64_t c_serviced_before = (*c)->shootdown().serviced();

  std::atomic<bool> c_walked_after_ack{false};
  std::atomic<bool> b_wrote{false};
  ScopedTestPointHook hook([&](TestPoint point) {
    if (vcpu_name != 'B' || point != TestPoint::kBeforeRemapReadOnly) return;
    // C acknowledged before we published: let it walk G again first. C
    // always does (it runs freely), so this wait only bounds a hang.
    if ((*c)->shootdown().serviced() != c_serviced_before) {
      EXPECT_TRUE(wait_for_flag(c_walked_after_ack, kAllowedWait, b->get()));
    }
  });

  SpinBarrier start(2);
  bool stale = false;
  std::thread b_thread([&] {
    vcpu_name = 'B';
    start.arrive_and_wait();
    guest_store(**b, kPage, kBValue);
    b_wrote.store(true, std::memory_order_release);
    (*b)->park();
  });
  std::thread c_thread([&] {
    vcpu_name = 'C';
    start.arrive_and_wait();
    for (;;) {
      // One basic block: check, then read G.
      const bool b_done = b_wrote.load(std::memory_order_acquire);
      (*c)->check();
      const bool acked = (*c)->shootdown().serviced() != c_serviced_before;
      const uint64_t seen = guest_load(**c, kPage);
      if (acked) c_walked_after_ack.store(true, std::memory_order_release);
      if (b_done) {
        stale = seen != kBValue;
        break;
      }
      std::this_thread::yield();  // two threads, maybe one core
    }
    (*c)->park();
  });
  b_thread.join();
  c_thread.join();
  EXPECT_TRUE((*memory)->verify_references().ok());
  return stale;
}

TEST(ShootdownBeforePublishRace, AfterAWriteCompletedNoVcpuReadsTheOriginalFrame) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    ASSERT_FALSE(c_read_stale_after_b_wrote())
        << "attempt " << attempt << ": C read F after B's write to G completed";
  }
}

}  // namespace
}  // namespace vmfork::testing
