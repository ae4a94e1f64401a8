// kvm::GuestRam without KVM. Realizing a VM's RAM into host memory is plain
// userfaultfd and mmap, so the paths a vCPU thread drives itself run here on
// any host that allows userfaultfd (root, or vm.unprivileged_userfaultfd=1):
// complete_mmio, which finishes a RAM access KVM handed over as MMIO (PVM's
// kernel does so for a write to a run realized read-only a moment ago).
#include "vmm/kvm/guest_ram.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "tests/guestmm/test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 4 * kMiB;
constexpr uint64_t kMappingBudget = 1024;

class GuestRamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    memory_ = make_memory();
    original_ = unwrap(memory_->create_space("vm0", kRam));
    for (uint64_t word = 0; word < 2 * kPageSize / 8; ++word)
      write_u64(*original_, Gpa(kPage + word * 8), original_value(word));
    clone_ = unwrap(original_->clone("vm0.1"));
    Result<std::unique_ptr<kvm::GuestRam>> ram =
        kvm::GuestRam::create(*clone_, memory_->pool().fd(), kMappingBudget);
    // Skipped only where the host refuses userfaultfd itself (a container's
    // seccomp filter, say); any later step of create() failing is a failure.
    if (!ram && ram.error().message.starts_with("userfaultfd:")) {
      GTEST_SKIP() << "no userfaultfd here: " << ram.error().message;
    }
    ram_ = unwrap(std::move(ram));
  }

  static uint64_t original_value(uint64_t word) { return 0x0123'4567'89ab'0000 + word; }

  // A page the original wrote, shared with the clone.
  static constexpr uint64_t kPage = 0x3000;

  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<AddressSpace> original_;
  std::unique_ptr<AddressSpace> clone_;
  std::unique_ptr<kvm::GuestRam> ram_;
};

template <size_t N>
std::array<uint8_t, N> bytes_of(uint64_t value) {
  std::array<uint8_t, N> bytes{};
  std::memcpy(bytes.data(), &value, N);
  return bytes;
}

TEST_F(GuestRamTest, StoreToASharedPageCopiesThePageFirst) {
  std::array<uint8_t, 8> store = bytes_of<8>(0x1122'3344'5566'7788);
  ASSERT_TRUE(IsOk(ram_->complete_mmio(kPage + 8, store, /*is_write=*/true)));

  EXPECT_EQ(read_u64(*clone_, Gpa(kPage + 8)), 0x1122'3344'5566'7788u);
  EXPECT_EQ(read_u64(*clone_, Gpa(kPage)), original_value(0)) << "the rest of the page is copied";
  EXPECT_EQ(read_u64(*original_, Gpa(kPage + 8)), original_value(1)) << "the original keeps its";
  const kvm::GuestRamCounters counters = ram_->counters();
  EXPECT_EQ(counters.mmio_completions, 1u);
  EXPECT_EQ(counters.missing_faults, 1u);
  EXPECT_EQ(counters.remaps, 1u) << "the copy is put in place, as a write fault's would be";
}

TEST_F(GuestRamTest, LoadReadsTheFrameThePageMaps) {
  std::array<uint8_t, 8> load{};
  ASSERT_TRUE(IsOk(ram_->complete_mmio(kPage + kPageSize + 16, load, /*is_write=*/false)));
  EXPECT_EQ(load, bytes_of<8>(original_value(kPageSize / 8 + 2)));
  EXPECT_EQ(ram_->counters().remaps, 0u) << "a load copies nothing";
}

TEST_F(GuestRamTest, MisalignedStoreWritesItsBytesOnly) {
  std::array<uint8_t, 4> store = bytes_of<4>(0xdead'beef);
  ASSERT_TRUE(IsOk(ram_->complete_mmio(kPage + 2, store, /*is_write=*/true)));
  const uint64_t expected =
      (original_value(0) & 0xffff'0000'0000'ffff) | (uint64_t{0xdead'beef} << 16);
  EXPECT_EQ(read_u64(*clone_, Gpa(kPage)), expected);
  EXPECT_EQ(read_u64(*clone_, Gpa(kPage + 8)), original_value(1));
}

TEST_F(GuestRamTest, StoreToAnUntouchedPageGetsAZeroedPageOfItsOwn) {
  std::array<uint8_t, 2> store = bytes_of<2>(0x5a5a);
  ASSERT_TRUE(IsOk(ram_->complete_mmio(kRam - 2, store, /*is_write=*/true)));
  EXPECT_EQ(read_u64(*clone_, Gpa(kRam - 8)), uint64_t{0x5a5a} << 48);
  EXPECT_EQ(read_u64(*original_, Gpa(kRam - 8)), 0u);
}

TEST_F(GuestRamTest, AccessesThatAreNotOneRamPagesAreRefused) {
  std::array<uint8_t, 8> bytes{};
  EXPECT_FALSE(ram_->complete_mmio(kRam, bytes, true).ok()) << "outside RAM";
  EXPECT_FALSE(ram_->complete_mmio(kPage + kPageSize - 4, bytes, true).ok()) << "across pages";
  EXPECT_FALSE(ram_->complete_mmio(kPage, std::span<uint8_t>(), false).ok()) << "no bytes";
  EXPECT_EQ(read_u64(*clone_, Gpa(kPage + kPageSize - 8)), original_value(kPageSize / 8 - 1));
}

}  // namespace
}  // namespace vmfork::testing
