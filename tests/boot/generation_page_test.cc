// The generation page of a PC guest: written at boot, advanced in each
// clone's copy without touching the original's, refused where none was
// written.
#include "vmm/boot/generation_page.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/guestmm/test_support.h"

namespace vmfork::testing {
namespace {

TEST(GenerationPage, ReadsBackWhatBootWrote) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 4 * kMiB));
  unwrap(write_generation_page(*space, {}));
  EXPECT_EQ(unwrap(read_generation_page(*space)), Generation{});
  // The guest's view: magic, version, then the two counters, little-endian.
  const std::vector<std::byte> bytes = read_bytes(*space, kGenerationPageGpa, 24);
  uint32_t magic = 0;
  uint32_t version = 0;
  std::memcpy(&magic, bytes.data(), 4);
  std::memcpy(&version, bytes.data() + 4, 4);
  EXPECT_EQ(magic, 0x4E474D56u);
  EXPECT_EQ(version, 1u);
}

TEST(GenerationPage, EachCloneIsOneGenerationPastItsOriginal) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> original = unwrap(memory->create_space("vm", 4 * kMiB));
  unwrap(write_generation_page(*original, {}));
  std::unique_ptr<AddressSpace> first = unwrap(original->clone("vm.1"));
  std::unique_ptr<AddressSpace> second = unwrap(original->clone("vm.2"));
  unwrap(advance_generation(*first, 1));
  unwrap(advance_generation(*second, 2));
  EXPECT_EQ(unwrap(read_generation_page(*first)), (Generation{1, 1}));
  EXPECT_EQ(unwrap(read_generation_page(*second)), (Generation{1, 2}));
  EXPECT_EQ(unwrap(read_generation_page(*original)), Generation{});
  // A clone of a clone.
  std::unique_ptr<AddressSpace> grandchild = unwrap(first->clone("vm.1.1"));
  unwrap(advance_generation(*grandchild, 1));
  EXPECT_EQ(unwrap(read_generation_page(*grandchild)), (Generation{2, 1}));
}

TEST(GenerationPage, ASpaceWithoutOneIsRefused) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 4 * kMiB));
  const Result<Generation> read = read_generation_page(*space);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(advance_generation(*space, 1).ok());
  EXPECT_FALSE(read_generation_page(*space).ok()) << "a refused advance writes nothing";
}

}  // namespace
}  // namespace vmfork::testing
