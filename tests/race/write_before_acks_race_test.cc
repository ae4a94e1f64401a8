// Stage 2 waits for the shootdown (DESIGN section 4, steps 6 and 7): the
// second race. vCPUs A, B and C of one VM; page G is shared with the VM it
// was cloned from, so it is read-only. C has cached a translation of G to
// F. B writes G and takes the COW fault. C holds off servicing shootdowns:
// once B is waiting for the acknowledgements (its requests posted), C lets
// A write G, and waits for A's write (up to a bound). A sets a flag after
// its write; C then reads G through its cached translation, and if A's flag
// was set, C must see A's value. With the protocol G is F2 read-only until
// C acknowledged, so A cannot write yet: it waits for B's leaf lock, C
// times out, and C's read precedes A's write. If W is set before every
// acknowledgement arrived (or F2 is published writable at once), A writes
// F2 while C still maps F, and C sees A's flag but not its write.
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
constexpr Gpa kWordB = kPage;       // B's write: the COW fault
constexpr Gpa kWordA = kPage + 64;  // A writes, C reads
constexpr uint64_t kAValue = 0x5151'5151'5151'5151;
constexpr int kAttempts = 5;

// One attempt; returns true if C saw A's flag but not A's write.
bool c_missed_a_completed_write() {
  auto [memory, origin] = make_race_memory();
  EXPECT_TRUE((*origin)->populate(kPage, kPageSize).ok());
  Result<std::unique_ptr<AddressSpace>> vm = (*origin)->clone("vm");
  EXPECT_TRUE(vm.ok());
  Result<std::unique_ptr<VcpuMemory>> a = VcpuMemory::create(**vm);
  Result<std::unique_ptr<VcpuMemory>> b = VcpuMemory::create(**vm);
  Result<std::unique_ptr<VcpuMemory>> c = VcpuMemory::create(**vm);
  EXPECT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(guest_load(**c, kWordA), 0u);  // C caches G -> F

  std::atomic<bool> b_awaiting_acks{false};
  std::atomic<bool> a_may_write{false};
  std::atomic<bool> a_wrote{false};
  ScopedTestPointHook hook([&](TestPoint point) {
    if (vcpu_name == 'B' && point == TestPoint::kBeforeShootdownWait) {
      b_awaiting_acks.store(true, std::memory_order_release);
    }
  });

  SpinBarrier start(3);
  bool missed = false;
  std::thread a_thread([&] {
    vcpu_name = 'A';
    start.arrive_and_wait();
    EXPECT_TRUE(wait_for_flag(a_may_write, kAllowedWait, a->get()));
    guest_store(**a, kWordA, kAValue);
    a_wrote.store(true, std::memory_order_release);
    (*a)->park();
  });
  std::thread b_thread([&] {
    vcpu_name = 'B';
    start.arrive_and_wait();
    guest_store(**b, kWordB, 1);
    (*b)->park();
  });
  std::thread c_thread([&] {
    vcpu_name = 'C';
    start.arrive_and_wait();
    // No shootdown is serviced until C has read G below.
    EXPECT_TRUE(wait_for_flag(b_awaiting_acks, kAllowedWait));
    a_may_write.store(true, std::memory_order_release);
    // The protocol forbids A's write before C acknowledges: time out.
    const bool a_done = wait_for_flag(a_wrote, kForbiddenWait);
    const uint64_t seen = guest_load(**c, kWordA);
    missed = a_done && seen != kAValue;
    (*c)->park();  // acknowledged on C's behalf from now on
  });
  a_thread.join();
  b_thread.join();
  c_thread.join();
  EXPECT_TRUE((*memory)->verify_references().ok());
  return missed;
}

TEST(WriteBeforeAcksRace, NoWriteToTheCopyCompletesWhileAVcpuStillMapsTheOriginal) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    ASSERT_FALSE(c_missed_a_completed_write())
        << "attempt " << attempt << ": A's write completed while C still read F";
  }
}

}  // namespace
}  // namespace vmfork::testing
