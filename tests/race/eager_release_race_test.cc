// The first race of DESIGN section 4. VM V and VM W share frame F. V's vCPU
// faults on F and copies it; W's vCPU faults on F at the same moment and
// then writes the whole page. With delayed release V still counts on F
// while it copies, so W sees a count of 2 and copies too: V's copy is
// clean. With eager release (drop the reference, then copy) W sees a count
// of 1, writes F in place, and V copies a torn page.
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

// Runs one attempt; returns true if V saw a word that only W wrote.
bool v_saw_w_write(ProtocolVariant variant) {
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

  // V's copy decision is made; hold the copy until W has written (or, when
  // W cannot, because the protocol is right, a short while).
  std::atomic<bool> v_deciding{false};
  std::atomic<bool> w_wrote{false};
  const std::thread::id v_thread_id_unset{};
  std::atomic<std::thread::id> v_thread_id{v_thread_id_unset};
  ProtocolTestHooks& hooks = (*memory)->test_hooks();
  hooks.variant = variant;
  hooks.before_copy = [&] {
    if (std::this_thread::get_id() != v_thread_id.load()) return;
    v_deciding.store(true, std::memory_order_release);
    wait_for_flag(w_wrote, std::chrono::milliseconds(2));
  };

  SpinBarrier start(2);
  bool torn = false;
  std::thread v_thread([&] {
    v_thread_id.store(std::this_thread::get_id());
    start.arrive_and_wait();
    guest_store(**vcpu_v, kPage, kVValue);  // faults: copy F
    for (uint64_t i = 1; i < kWordsPerPage; ++i) {
      if (guest_load(**vcpu_v, kPage + i * 8) != kOriginalValue) torn = true;
    }
    (*vcpu_v)->park();
  });
  std::thread w_thread([&] {
    start.arrive_and_wait();
    wait_for_flag(v_deciding, std::chrono::milliseconds(50), vcpu_w->get());
    for (uint64_t i = 1; i < kWordsPerPage; ++i)
      guest_store(**vcpu_w, kPage + i * 8, kWValue);
    w_wrote.store(true, std::memory_order_release);
    (*vcpu_w)->park();
  });
  v_thread.join();
  w_thread.join();
  hooks = ProtocolTestHooks{};
  (*vcpu_v)->resume();
  (*vcpu_w)->resume();

  // Whatever happened, W must see its own writes and V its own.
  EXPECT_EQ(guest_load(**vcpu_w, kPage + 8), kWValue);
  EXPECT_EQ(guest_load(**vcpu_v, kPage), kVValue);
  return torn;
}

TEST(EagerReleaseRace, DelayedReleaseNeverCopiesATornPage) {
  const int attempts = 200 / kSanitizerSlowdown;
  int torn = 0;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (v_saw_w_write(ProtocolVariant::kCorrect)) ++torn;
  }
  EXPECT_EQ(torn, 0) << "torn copies in " << attempts << " attempts with the real protocol";
}

TEST(EagerReleaseRace, EagerReleaseIsCaughtWithinBoundedAttempts) {
  constexpr int kAttempts = 50;
  int attempt = 0;
  while (attempt < kAttempts && !v_saw_w_write(ProtocolVariant::kEagerRelease))
    ++attempt;
  EXPECT_LT(attempt, kAttempts) << "the weakened protocol was never caught";
}

}  // namespace
}  // namespace vmfork::testing
