// write_boot_layout and the vCPU start state of DESIGN section 8: registers,
// control registers for long mode, flat segments matching the GDT bytes,
// stacks that are disjoint and inside RAM, and parameters it refuses.
#include "vmm/boot/boot_layout.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "boot_test_support.h"
#include "vmm/boot/boot_info.h"
#include "vmm/boot/gdt.h"
#include "vmm/boot/monitor_area.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 64 * kMiB;
constexpr uint32_t kVcpus = 4;
constexpr uint64_t kEntry = kMiB + 0x40;
constexpr uint64_t kStacksBottom = kRam - kVcpus * 0x10000;

class BootLayout : public ::testing::Test {
 protected:
  std::vector<VcpuBootState> boot(const BootImage& image) {
    return unwrap(write_boot_layout(*space_, layout_, image));
  }
  BootImage image_{
      .entry = Gpa(kEntry), .free_base = Gpa(2 * kMiB), .free_end = Gpa(kStacksBottom)};
  std::unique_ptr<GuestMemory> memory_ = make_memory();
  std::unique_ptr<AddressSpace> space_ = unwrap(memory_->create_space("vm", kRam));
  GuestLayout layout_ = unwrap(GuestLayout::create(kRam, kVcpus));
};

TEST_F(BootLayout, EveryVcpuStartsAtTheEntryWithItsIndexAndTheBootInfo) {
  const std::vector<VcpuBootState> vcpus = boot(image_);
  ASSERT_EQ(vcpus.size(), kVcpus);
  for (uint32_t i = 0; i < kVcpus; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(vcpus[i].rip, kEntry);
    EXPECT_EQ(vcpus[i].regs.rdi, i);
    EXPECT_EQ(vcpus[i].regs.rsi, 0x1000u);
    EXPECT_EQ(vcpus[i].rflags, 0x2u) << "IF clear, reserved bit 1 set";
    EXPECT_EQ(vcpus[i].regs.rax, 0u);
  }
}

TEST_F(BootLayout, StacksAreDisjointBelowTheTopOfRamAndAboveFreeEnd) {
  const std::vector<VcpuBootState> vcpus = boot(image_);
  EXPECT_EQ(vcpus[0].regs.rsp, kRam) << "vCPU 0 highest";
  for (uint32_t i = 0; i < kVcpus; ++i) {
    const uint64_t top = vcpus[i].regs.rsp;
    EXPECT_LE(top, kRam);
    EXPECT_EQ(top % 16, 0u) << "the ABI's stack alignment at a call boundary";
    EXPECT_GE(top - 0x10000, kStacksBottom);
    for (uint32_t j = i + 1; j < kVcpus; ++j) {
      const uint64_t other = vcpus[j].regs.rsp;
      EXPECT_TRUE(other <= top - 0x10000 || other - 0x10000 >= top) << i << " and " << j;
    }
  }
}

TEST_F(BootLayout, LongModeWithPagingOnTheIdentityMap) {
  const VcpuBootState s = boot(image_)[1];
  EXPECT_EQ(s.cr0 & 0x8000'0001, 0x8000'0001u) << "PG and PE";
  EXPECT_EQ(s.cr4 & 0x20, 0x20u) << "PAE";
  EXPECT_EQ(s.efer & 0x500, 0x500u) << "LME and LMA";
  EXPECT_EQ(s.cr3, 0x10000u);
  // The guest's first fetch and first push translate to themselves.
  for (const uint64_t address : {s.rip, s.regs.rsp - 8, s.regs.rsi}) {
    const std::optional<Translation> t = translate(*space_, s.cr3, address);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->physical, address);
  }
}

TEST_F(BootLayout, SegmentsAreFlatAndMatchTheGdtBytes) {
  const VcpuBootState s = boot(image_)[0];
  EXPECT_EQ(s.cs.selector, 0x08);
  EXPECT_TRUE(s.cs.long_mode);
  EXPECT_FALSE(s.cs.default_32bit);
  for (const SegmentRegister* data : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    EXPECT_EQ(data->selector, 0x10);
    EXPECT_EQ(data->base, 0u);
    EXPECT_EQ(*data, flat_data_segment());
  }
  EXPECT_EQ(s.gdtr.base, 0x2000u);
  EXPECT_EQ(s.gdtr.limit, 23u);
  EXPECT_EQ(s.idtr.limit, 0u);
  // Hand-encoded: null; code, L=1 G=1 P=1 S=1 type 0xb; data, D/B=1 G=1 type 3.
  EXPECT_EQ(read_u64(*space_, Gpa(0x2000)), 0u);
  EXPECT_EQ(read_u64(*space_, Gpa(0x2008)), 0x00af'9b00'0000'ffffu);
  EXPECT_EQ(read_u64(*space_, Gpa(0x2010)), 0x00cf'9300'0000'ffffu);
}

TEST_F(BootLayout, BootInfoDescribesTheVm) {
  (void)boot(image_);
  const BootInfo info = unwrap(read_boot_info(*space_));
  EXPECT_EQ(info.vcpu_count, kVcpus);
  EXPECT_EQ(info.ram_bytes, kRam);
  EXPECT_EQ(info.clone_id, 0u);
  EXPECT_EQ(info.free_base, Gpa(2 * kMiB));
  EXPECT_EQ(info.free_end, Gpa(kStacksBottom));
}

TEST_F(BootLayout, WritesNothingAtOrAboveOneMiB) {
  (void)boot(image_);
  EXPECT_EQ(read_bytes(*space_, Gpa(kMiB), 2 * kMiB), std::vector<std::byte>(2 * kMiB));
}

TEST_F(BootLayout, BadImagesAreRefused) {
  const BootImage bad[] = {
      {.entry = Gpa(0x1000), .free_base = Gpa(2 * kMiB), .free_end = Gpa(kStacksBottom)},
      {.entry = Gpa(kStacksBottom), .free_base = Gpa(2 * kMiB), .free_end = Gpa(kStacksBottom)},
      {.entry = Gpa(kEntry), .free_base = Gpa(2 * kMiB + 1), .free_end = Gpa(kStacksBottom)},
      {.entry = Gpa(kEntry), .free_base = Gpa(0x8000), .free_end = Gpa(kStacksBottom)},
      {.entry = Gpa(kEntry),
       .free_base = Gpa(kStacksBottom + 0x1000),
       .free_end = Gpa(kStacksBottom)},
      {.entry = Gpa(kEntry), .free_base = Gpa(2 * kMiB), .free_end = Gpa(kRam)},
  };
  for (const BootImage& image : bad) {
    const Result<std::vector<VcpuBootState>> vcpus = write_boot_layout(*space_, layout_, image);
    ASSERT_FALSE(vcpus.ok());
    EXPECT_EQ(vcpus.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(vcpus.error().message.empty());
  }
  EXPECT_EQ(memory_->frame_counts().data, 0u) << "a refused boot writes nothing";
}

TEST_F(BootLayout, SpaceOfAnotherSizeIsRefused) {
  std::unique_ptr<AddressSpace> other = unwrap(memory_->create_space("other", 2 * kRam));
  const Result<std::vector<VcpuBootState>> vcpus = write_boot_layout(*other, layout_, image_);
  ASSERT_FALSE(vcpus.ok());
  EXPECT_NE(vcpus.error().message.find("RAM"), std::string::npos);
}

TEST(GdtEncoding, DescriptorsRoundTripTheHiddenState) {
  // A limit below 1 MiB without granularity, and a nonzero base spread over
  // the descriptor's three base fields.
  const SegmentRegister segment{.selector = 0x18,
                                .base = 0x1234'5678,
                                .limit = 0xabcde,
                                .type = 0x3,
                                .code_or_data = true,
                                .dpl = 3,
                                .present = true,
                                .long_mode = false,
                                .default_32bit = true,
                                .granularity = false};
  // Bytes 7..0: base 31:24 (12), flags G D L AVL = 0100 and limit 19:16 (4a),
  // access P DPL S type = 1 11 1 0011 (f3), base 23:0 (345678), limit 15:0 (bcde).
  EXPECT_EQ(encode_segment_descriptor(segment), 0x124a'f334'5678'bcdeu);
}

}  // namespace
}  // namespace vmfork::testing
