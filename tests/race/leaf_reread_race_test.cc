// The leaf is re-read under its lock (DESIGN section 4, step 2). vCPUs A
// and B of VM V write page G, which V shares with two other holders of its
// frame F. Both fault; B is held just before it takes G's leaf lock until
// A's fault finished and A's write to G completed. B must then find G
// writable and leave it alone: A's value survives. A fault that decides on
// the leaf it read before taking the lock still sees F read-only with a
// count above 1, copies F again and publishes that copy over A's F2: A's
// write is lost (and the reference it drops is on F, not F2).
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
constexpr Gpa kNeighbour = kPage + kPageSize;  // same leaf table
constexpr Gpa kWordA = kPage;
constexpr Gpa kWordB = kPage + 64;
constexpr uint64_t kAValue = 0xa1a1'a1a1'a1a1'a1a1;
constexpr uint64_t kBValue = 0xb2b2'b2b2'b2b2'b2b2;
constexpr int kAttempts = 5;

uint64_t host_read(AddressSpace& space, Gpa gpa) {
  uint64_t word = 0;
  EXPECT_TRUE(space.read(gpa, std::as_writable_bytes(std::span(&word, 1))).ok());
  return word;
}

// One attempt: both faults, then A's word as V holds it.
void both_fault_on_the_same_page(int attempt) {
  auto [memory, origin] = make_race_memory();
  EXPECT_TRUE((*origin)->populate(kPage, 2 * kPageSize).ok());
  // W's own leaf table also refers to F, so F keeps a count of 2 after V's
  // first fault drops its reference: a second copy decision would copy.
  Result<std::unique_ptr<AddressSpace>> w = (*origin)->clone("w");
  EXPECT_TRUE(w.ok());
  const uint64_t one = 1;
  EXPECT_TRUE((*w)->write(kNeighbour, std::as_bytes(std::span(&one, 1))).ok());
  Result<std::unique_ptr<AddressSpace>> v = (*origin)->clone("v");
  EXPECT_TRUE(v.ok());
  Result<std::unique_ptr<VcpuMemory>> a = VcpuMemory::create(**v);
  Result<std::unique_ptr<VcpuMemory>> b = VcpuMemory::create(**v);
  EXPECT_TRUE(a.ok() && b.ok());

  std::atomic<bool> b_at_leaf_lock{false};
  std::atomic<bool> a_wrote{false};
  ScopedTestPointHook hook([&, a_held = false, b_held = false](TestPoint point) mutable {
    if (point != TestPoint::kBeforeLeafLock) return;
    if (vcpu_name == 'A' && !a_held) {
      a_held = true;  // only A's thread touches it
      EXPECT_TRUE(wait_for_flag(b_at_leaf_lock, kAllowedWait, a->get()));
    } else if (vcpu_name == 'B' && !b_held) {
      b_held = true;
      b_at_leaf_lock.store(true, std::memory_order_release);
      EXPECT_TRUE(wait_for_flag(a_wrote, kAllowedWait, b->get()));
    }
  });

  SpinBarrier start(2);
  std::thread a_thread([&] {
    vcpu_name = 'A';
    start.arrive_and_wait();
    guest_store(**a, kWordA, kAValue);
    a_wrote.store(true, std::memory_order_release);
    (*a)->park();
  });
  std::thread b_thread([&] {
    vcpu_name = 'B';
    start.arrive_and_wait();
    guest_store(**b, kWordB, kBValue);
    (*b)->park();
  });
  a_thread.join();
  b_thread.join();

  EXPECT_EQ(host_read(**v, kWordA), kAValue) << "attempt " << attempt << ": A's write lost";
  EXPECT_EQ(host_read(**v, kWordB), kBValue);
  EXPECT_EQ(host_read(**w, kWordA), 0u);
  EXPECT_TRUE((*memory)->verify_references().ok());
}

TEST(LeafRereadRace, AWriteSurvivesAFaultThatWaitedForTheLeafLock) {
  for (int attempt = 0; attempt < kAttempts && !HasFailure(); ++attempt)
    both_fault_on_the_same_page(attempt);
}

}  // namespace
}  // namespace vmfork::testing
