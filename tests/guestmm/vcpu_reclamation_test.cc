// A vCPU's part in reclamation (DESIGN section 5) across park and resume:
// parked it holds nothing back; resumed it holds back every frame retired
// after it resumed until it passes a quiescent point.
#include <gtest/gtest.h>

#include <memory>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/vcpu_memory.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 16 * kMiB;
constexpr Gpa kPage{kMiB};

// Frames retired by a space that comes and goes.
void retire_some_frames(GuestMemory& memory) {
  std::unique_ptr<AddressSpace> other = unwrap(memory.create_space("other", kRam));
  write_u64(*other, kPage, 1);
}

TEST(VcpuReclamation, ResumedVcpuHoldsBackFramesRetiredAfterItResumed) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  vcpu->park();
  vcpu->resume();
  retire_some_frames(*memory);
  ASSERT_GT(memory->reclaimer().pending(), 0u);
  EXPECT_FALSE(reclaim_all(*memory)) << "a running vCPU may still walk through them";
  // Quiescent points let the epoch move on, one step per collection.
  for (int i = 0; i < 8 && memory->reclaimer().pending() > 0; ++i) {
    vcpu->check();
    memory->reclaimer().collect();
  }
  EXPECT_EQ(memory->reclaimer().pending(), 0u);
}

TEST(VcpuReclamation, VcpuCreatedParkedHoldsBackNothingUntilItResumes) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space, VcpuStart::kParked));
  retire_some_frames(*memory);
  EXPECT_TRUE(reclaim_all(*memory));
  vcpu->resume();
  retire_some_frames(*memory);
  EXPECT_FALSE(reclaim_all(*memory));
}

}  // namespace
}  // namespace vmfork::testing
