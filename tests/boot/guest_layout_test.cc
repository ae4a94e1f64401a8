// GuestLayout: the memory map of DESIGN section 8 and the sizes it refuses.
#include "vmm/boot/guest_layout.h"

#include <gtest/gtest.h>

#include "tests/guestmm/test_support.h"

namespace vmfork::testing {
namespace {

TEST(GuestLayout, StacksSitAtTheTopOfRamVcpuZeroHighest) {
  const GuestLayout layout = unwrap(GuestLayout::create(16 * kMiB, 4));
  EXPECT_EQ(layout.image_base(), Gpa(kMiB));
  EXPECT_EQ(layout.stack_top(0), Gpa(16 * kMiB));
  EXPECT_EQ(layout.stack_top(1), Gpa(16 * kMiB - 0x10000));
  EXPECT_EQ(layout.stack_top(3), Gpa(16 * kMiB - 0x30000));
  EXPECT_EQ(layout.stacks_bottom(), Gpa(16 * kMiB - 0x40000));
}

TEST(GuestLayout, BadParametersAreInvalidArgument) {
  struct Case {
    uint64_t ram;
    uint32_t vcpus;
  };
  for (const Case c : {Case{16 * kMiB, 0},              // no vCPU
                       Case{0, 1},                      // no RAM
                       Case{3 * kMiB, 1},               // not whole 2 MiB pages
                       Case{16 * kMiB + kPageSize, 1},  //
                       Case{64 * kGiB + 2 * kMiB, 1},   // tables would not fit below 1 MiB
                       Case{2 * kMiB, 17},              // 1 MiB + 17 stacks > 2 MiB
                       Case{2 * kMiB, 0xffff'ffff}}) {  // stacks larger than RAM
    SCOPED_TRACE(::testing::Message() << c.ram << " bytes, " << c.vcpus << " vCPUs");
    const Result<GuestLayout> layout = GuestLayout::create(c.ram, c.vcpus);
    ASSERT_FALSE(layout.ok());
    EXPECT_EQ(layout.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(layout.error().message.empty());
  }
}

TEST(GuestLayout, ExtremesThatFitAreAccepted) {
  EXPECT_TRUE(IsOk(GuestLayout::create(2 * kMiB, 16)));  // stacks end exactly at 1 MiB
  EXPECT_TRUE(IsOk(GuestLayout::create(64 * kGiB, 1)));
}

TEST(GuestLayout, APcIsMarkedAndAFreestandingLayoutIsNot) {
  EXPECT_EQ(unwrap(GuestLayout::create(16 * kMiB, 1)).platform(), Platform::kFreestanding);
  const GuestLayout pc = unwrap(GuestLayout::create_pc(512 * kMiB, 2));
  EXPECT_EQ(pc.platform(), Platform::kPc);
  EXPECT_EQ(pc.ram_bytes(), 512 * kMiB);
  EXPECT_EQ(pc.vcpu_count(), 2u);
}

TEST(GuestLayout, APcRefusesWhatItsMpTableAndMemoryHoleCannotHold) {
  struct Case {
    uint64_t ram;
    uint32_t vcpus;
  };
  for (const Case c : {Case{256 * kMiB, 0},              // no vCPU
                       Case{256 * kMiB, 65},             // more than the MP table names
                       Case{0, 1},                       // no RAM
                       Case{256 * kMiB + kPageSize, 1},  // not whole 2 MiB pages
                       Case{3 * kGiB + 2 * kMiB, 1}}) {  // into the 32-bit hole
    SCOPED_TRACE(::testing::Message() << c.ram << " bytes, " << c.vcpus << " vCPUs");
    const Result<GuestLayout> layout = GuestLayout::create_pc(c.ram, c.vcpus);
    ASSERT_FALSE(layout.ok());
    EXPECT_EQ(layout.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(IsOk(GuestLayout::create_pc(3 * kGiB, 64)));
}

}  // namespace
}  // namespace vmfork::testing
