// The boot-info block: the exact bytes of DESIGN section 8 at hand-written
// offsets, decoding with its checks, and clone_id rewritten in a clone only.
#include "vmm/boot/boot_info.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <vector>

#include "tests/guestmm/test_support.h"
#include "vmm/boot/monitor_area.h"

namespace vmfork::testing {
namespace {

const BootInfo kInfo{.vcpu_count = 3,
                     .ram_bytes = 0x1'2340'0000,
                     .clone_id = 0,
                     .free_base = Gpa(0x0012'3000),
                     .free_end = Gpa(0x1'233d'0000)};

std::vector<std::byte> le(uint64_t value, size_t bytes) {
  std::vector<std::byte> out;
  for (size_t i = 0; i < bytes; ++i)
    out.push_back(static_cast<std::byte>(value >> (8 * i)));
  return out;
}

TEST(BootInfo, EncodesTheAbiLayout) {
  const std::array<std::byte, kBootInfoBytes> bytes = kInfo.encode();
  std::vector<std::byte> expected;
  for (const auto& field : {le(0x6B46'4D56, 4), le(1, 4), le(3, 4), le(0, 4), le(0x1'2340'0000, 8),
                            le(0, 8), le(0x0012'3000, 8), le(0x1'233d'0000, 8)}) {
    expected.insert(expected.end(), field.begin(), field.end());
  }
  ASSERT_EQ(expected.size(), 48u);
  EXPECT_EQ(std::vector<std::byte>(bytes.begin(), bytes.end()), expected);
  // The magic spells "VMFk" in memory order.
  EXPECT_EQ(static_cast<char>(bytes[0]), 'V');
  EXPECT_EQ(static_cast<char>(bytes[3]), 'k');
}

TEST(BootInfo, DecodeRoundTripsAndChecksTheHeader) {
  std::array<std::byte, kBootInfoBytes> bytes = kInfo.encode();
  EXPECT_EQ(unwrap(BootInfo::decode(bytes)), kInfo);
  for (const size_t corrupt : {size_t{0}, size_t{4}, size_t{12}}) {  // magic, version, reserved
    std::array<std::byte, kBootInfoBytes> bad = bytes;
    bad[corrupt] ^= std::byte{0x40};
    const Result<BootInfo> decoded = BootInfo::decode(bad);
    ASSERT_FALSE(decoded.ok()) << "byte " << corrupt;
    EXPECT_FALSE(decoded.error().message.empty());
  }
}

TEST(BootInfo, WrittenAtItsAddress) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 4 * kMiB));
  unwrap(write_boot_info(*space, kInfo));
  const std::array<std::byte, kBootInfoBytes> expected = kInfo.encode();
  EXPECT_EQ(read_bytes(*space, Gpa(0x1000), kBootInfoBytes),
            std::vector<std::byte>(expected.begin(), expected.end()));
  EXPECT_EQ(unwrap(read_boot_info(*space)), kInfo);
}

TEST(BootInfo, WriteCloneIdChangesOnlyTheCloneAndOnlyThatField) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> original = unwrap(memory->create_space("vm", 4 * kMiB));
  unwrap(write_boot_info(*original, kInfo));
  std::unique_ptr<AddressSpace> clone = unwrap(original->clone("clone"));

  unwrap(write_clone_id(*clone, 7));
  EXPECT_EQ(read_u64(*clone, Gpa(0x1000 + 24)), 7u);
  BootInfo expected = kInfo;
  expected.clone_id = 7;
  EXPECT_EQ(unwrap(read_boot_info(*clone)), expected);
  EXPECT_EQ(unwrap(read_boot_info(*original)), kInfo);
}

TEST(BootInfo, WriteCloneIdRefusesASpaceWithoutBootInfo) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 4 * kMiB));
  const Result<void> written = write_clone_id(*space, 1);
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.error().message.find("magic"), std::string::npos);
}

}  // namespace
}  // namespace vmfork::testing
