// load_elf: segment bytes land at their physical addresses, .bss reads as
// zero (also over a space that held data), free_base/free_end follow DESIGN
// section 8, and a refused file writes nothing.
#include "vmm/loader/elf_loader.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "elf_builder.h"
#include "tests/guestmm/test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 8 * kMiB;
constexpr uint64_t kStacksBottom = kRam - 2 * (64 << 10);

class LoadElf : public ::testing::Test {
 protected:
  std::unique_ptr<GuestMemory> memory_ = make_memory();
  std::unique_ptr<AddressSpace> space_ = unwrap(memory_->create_space("vm", kRam));
  GuestLayout layout_ = unwrap(GuestLayout::create(kRam, 2));
};

TEST_F(LoadElf, CopiesFileBytesToPhysicalAddresses) {
  const ElfBuilder elf = ElfBuilder::typical();
  const LoadedElf loaded = unwrap(load_elf(elf.build(), *space_, layout_));
  EXPECT_EQ(loaded.entry, Gpa(kProgramBase));
  ASSERT_EQ(loaded.segments.size(), 2u);
  EXPECT_EQ(read_bytes(*space_, Gpa(kProgramBase), 3), elf.segments[0].data);
  EXPECT_EQ(read_bytes(*space_, Gpa(kProgramBase + 0x10000), 10), elf.segments[1].data);
}

TEST_F(LoadElf, BssReadsAsZero) {
  unwrap(load_elf(ElfBuilder::typical().build(), *space_, layout_));
  const std::vector<std::byte> bss =
      read_bytes(*space_, Gpa(kProgramBase + 0x10000 + 10), 0x3000 - 10);
  EXPECT_EQ(bss, std::vector<std::byte>(bss.size()));
}

TEST_F(LoadElf, BssOverOldDataIsZeroed) {
  // A space that was used before: the loader must not rely on demand zero.
  const std::vector<std::byte> junk = pattern(0x4000, 7);
  write_bytes(*space_, Gpa(kProgramBase + 0x10000), junk);
  unwrap(load_elf(ElfBuilder::typical().build(), *space_, layout_));
  const std::vector<std::byte> bss =
      read_bytes(*space_, Gpa(kProgramBase + 0x10000 + 10), 0x3000 - 10);
  EXPECT_EQ(bss, std::vector<std::byte>(bss.size()));
  // Past p_memsz the old bytes stay: the loader writes only its segments.
  EXPECT_EQ(read_bytes(*space_, Gpa(kProgramBase + 0x13000), 0x1000),
            std::vector<std::byte>(junk.begin() + 0x3000, junk.end()));
}

TEST_F(LoadElf, LargeBssCostsNoFramesInAFreshSpace) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].memsz = 4 * kMiB;
  const uint64_t before = memory_->frame_counts().data;
  unwrap(load_elf(elf.build(), *space_, layout_));
  // One frame for the code page, one for the data page that holds file bytes.
  EXPECT_EQ(memory_->frame_counts().data - before, 2u);
}

TEST_F(LoadElf, FreeRangeStartsAtThePageAfterTheHighestSegment) {
  const LoadedElf loaded = unwrap(load_elf(ElfBuilder::typical().build(), *space_, layout_));
  EXPECT_EQ(loaded.free_base, Gpa(kProgramBase + 0x13000));  // data ends on a page boundary
  EXPECT_EQ(loaded.free_end, Gpa(kStacksBottom));

  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].memsz = 0x3001;
  const LoadedElf rounded = unwrap(load_elf(elf.build(), *space_, layout_));
  EXPECT_EQ(rounded.free_base, Gpa(kProgramBase + 0x14000));
}

TEST_F(LoadElf, FreeBaseCanReachTheStacks) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].paddr = kStacksBottom - 0x3000;
  const LoadedElf loaded = unwrap(load_elf(elf.build(), *space_, layout_));
  EXPECT_EQ(loaded.free_base, loaded.free_end);
}

TEST_F(LoadElf, RefusedFileWritesNothing) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.entry = kProgramBase + 0x10000;  // not executable; found after every segment parsed
  const Result<LoadedElf> loaded = load_elf(elf.build(), *space_, layout_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(memory_->frame_counts().data, 0u);
}

TEST_F(LoadElf, SpaceOfAnotherSizeIsRefused) {
  std::unique_ptr<AddressSpace> other = unwrap(memory_->create_space("other", 2 * kRam));
  const Result<LoadedElf> loaded = load_elf(ElfBuilder::typical().build(), *other, layout_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(loaded.error().message.find("RAM"), std::string::npos);
}

}  // namespace
}  // namespace vmfork::testing
