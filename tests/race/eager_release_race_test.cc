// Delayed release (DESIGN section 4, step 4): the first race. VMs V and W
// share frame F. V's vCPU takes the COW fault on F and is held at the start
// of its copy until W's vCPU has written the whole page. V still counts on F
// while it copies, so W sees a count of 2 and copies F too: V's copy is
// clean. A fault that drops its reference before the copy lets W see a
// count of 1 and write F in place, and V copies a torn page.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/vcpu_memory.h"
#include "race_harness.h"

namespace vmfork::testing {
namespace {

constexpr Gpa kPage{0x10'0000};
constexpr uint64_t kWordsPerPage = kPageSize / sizeof(uint64_t);
constexpr uint64_t kOriginalValue = 0x0123'4567'89ab'cdef;
constexpr uint64_t kWValue = 0xbbbb'bbbb'bbbb'bbbb;
constexpr uint64_t kVValue = 0xaaaa'aaaa'aaaa'aaaa;
constexpr int kAttempts = 5;

// One attempt; returns the words of V's copy that W wrote.
int torn_words_in_v_copy() {
  Result<std::unique_ptr<GuestMemory>> memory =
      GuestMemory::create({.pool_bytes = 16 << 20, .populate = Populate::kOnDemand});
  EXPECT_TRUE(memory.ok());
  Result<std::unique_ptr<AddressSpace>> v = (*memory)->create_space("v", 4 << 20);
  EXPECT_TRUE(v.ok());
  for (uint64_t i = 0; i < kWordsPerPage; ++i) {
    const uint64_t value = kOriginalValue;
    EXPECT_TRUE((*v)->write(kPage + i * 8, std::as_bytes(std::span(&value, 1))).ok());
  }
  Result<std::unique_ptr<AddressSpace>> w = (*v)->clone("w");
  EXPECT_TRUE(w.ok());
  Result<std::unique_ptr<VcpuMemory>> vcpu_v = VcpuMemory::create(**v);
  Result<std::unique_ptr<VcpuMemory>> vcpu_w = VcpuMemory::create(**w);
  EXPECT_TRUE(vcpu_v.ok() && vcpu_w.ok());

  std::atomic<bool> v_copying{false};
  std::atomic<bool> w_wrote{false};
  ScopedTestPointHook hook([&](TestPoint point) {
    if (vcpu_name != 'V' || point != TestPoint::kBeforeFrameCopy) return;
    v_copying.store(true, std::memory_order_release);
    // W can always finish: with the protocol it copies F for itself.
    wait_for_flag(w_wrote, kAllowedWait, vcpu_v->get());
  });

  SpinBarrier start(2);
  int torn = 0;
  std::thread v_thread([&] {
    vcpu_name = 'V';
    start.arrive_and_wait();
    guest_store(**vcpu_v, kPage, kVValue);  // faults: copies F
    for (uint64_t i = 1; i < kWordsPerPage; ++i) {
      if (guest_load(**vcpu_v, kPage + i * 8) != kOriginalValue) ++torn;
    }
    (*vcpu_v)->park();
  });
  std::thread w_thread([&] {
    vcpu_name = 'W';
    start.arrive_and_wait();
    EXPECT_TRUE(wait_for_flag(v_copying, kAllowedWait, vcpu_w->get()));
    for (uint64_t i = 1; i < kWordsPerPage; ++i)
      guest_store(**vcpu_w, kPage + i * 8, kWValue);
    w_wrote.store(true, std::memory_order_release);
    (*vcpu_w)->park();
  });
  v_thread.join();
  w_thread.join();
  (*vcpu_v)->resume();
  (*vcpu_w)->resume();

  // Whatever happened, W sees its own writes and V its own.
  EXPECT_EQ(guest_load(**vcpu_w, kPage + 8), kWValue);
  EXPECT_EQ(guest_load(**vcpu_v, kPage), kVValue);
  EXPECT_TRUE((*memory)->verify_references().ok());
  return torn;
}

TEST(EagerReleaseRace, ACopyIsNeverTornByTheOtherHolderWritingInPlace) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    ASSERT_EQ(torn_words_in_v_copy(), 0) << "attempt " << attempt << ": V copied a page W wrote";
  }
}

}  // namespace
}  // namespace vmfork::testing
