// The loader never crashes or hangs: random byte strings, and random
// mutations of a valid executable, each give either a load that keeps every
// promise of DESIGN section 8 or an error with a message. Deterministic
// seeds, so a failure replays.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "elf_builder.h"
#include "tests/guestmm/test_support.h"
#include "vmm/loader/elf_loader.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 4 * kMiB;
constexpr uint32_t kVcpus = 3;

class ElfFuzz : public ::testing::Test {
 protected:
  // Loads `file` into a fresh space and checks the outcome is one of the two
  // allowed. Returns true if it loaded.
  bool check_one(const std::vector<std::byte>& file) {
    std::unique_ptr<AddressSpace> space = unwrap(memory_->create_space("fuzz", kRam));
    const Result<LoadedElf> loaded = load_elf(file, *space, layout_);
    if (!loaded.ok()) {
      EXPECT_FALSE(loaded.error().message.empty());
      return false;
    }
    const LoadedElf& elf = loaded.value();
    EXPECT_FALSE(elf.segments.empty());
    bool entry_executable = false;
    for (size_t i = 0; i < elf.segments.size(); ++i) {
      const ElfSegment& s = elf.segments[i];
      EXPECT_GE(s.start, layout_.image_base());
      EXPECT_LE(s.end(), layout_.stacks_bottom());
      EXPECT_LE(s.file_bytes, s.memory_bytes);
      if (i > 0) {
        EXPECT_LE(elf.segments[i - 1].end(), s.start);
      }
      entry_executable |= s.executable && s.start <= elf.entry && elf.entry < s.end();
      const std::vector<std::byte> in_guest = read_bytes(*space, s.start, s.file_bytes);
      EXPECT_TRUE(std::equal(in_guest.begin(), in_guest.end(),
                             file.begin() + static_cast<ptrdiff_t>(s.file_offset)));
    }
    EXPECT_TRUE(entry_executable);
    EXPECT_EQ(elf.free_base.page_offset(), 0u);
    EXPECT_LE(elf.free_base, elf.free_end);
    EXPECT_EQ(elf.free_end, layout_.stacks_bottom());
    return true;
  }

  std::unique_ptr<GuestMemory> memory_ = make_memory();
  GuestLayout layout_ = unwrap(GuestLayout::create(kRam, kVcpus));
};

TEST_F(ElfFuzz, RandomByteStringsAreRefusedCleanly) {
  std::mt19937_64 random(1);
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::byte> file(random() % 512);
    for (std::byte& b : file)
      b = static_cast<std::byte>(random());
    // Half of them start like an ELF64 header so parsing gets further.
    if (i % 2 == 0 && file.size() >= 8) {
      std::memcpy(file.data(),
                  "\x7f"
                  "ELF\x02\x01\x01",
                  7);
    }
    check_one(file);
    if (::testing::Test::HasFailure()) FAIL() << "iteration " << i;
  }
}

TEST_F(ElfFuzz, MutatedExecutablesLoadOrAreRefused) {
  std::mt19937_64 random(2);
  const std::vector<std::byte> valid = ElfBuilder::typical().build();
  ASSERT_TRUE(check_one(valid));
  int loaded = 0;
  constexpr int kIterations = 5000;
  for (int i = 0; i < kIterations; ++i) {
    std::vector<std::byte> file = valid;
    const int mutations = 1 + static_cast<int>(random() % 4);
    for (int m = 0; m < mutations; ++m) {
      const size_t at = random() % file.size();
      switch (random() % 5) {
        case 0:  // flip one bit
          file[at] ^= static_cast<std::byte>(1u << (random() % 8));
          break;
        case 1:  // a random byte
          file[at] = static_cast<std::byte>(random());
          break;
        case 2: {  // a random or extreme 64-bit word (sizes, offsets, addresses)
          const uint64_t values[] = {0,    1,    ~uint64_t{0}, uint64_t{1} << 63,
                                     kRam, kMiB, random(),     random() % kRam};
          const uint64_t value = values[random() % std::size(values)];
          const size_t word = std::min(at, file.size() - sizeof(value));
          std::memcpy(file.data() + word, &value, sizeof(value));
          break;
        }
        case 3:  // truncate
          file.resize(at);
          break;
        default:  // grow with random bytes
          for (uint64_t k = random() % 64; k > 0; --k)
            file.push_back(static_cast<std::byte>(random()));
          break;
      }
      if (file.empty()) break;
    }
    loaded += check_one(file) ? 1 : 0;
    if (::testing::Test::HasFailure()) FAIL() << "iteration " << i;
  }
  // Some mutations (inside segment data, padding) keep the file valid: the
  // success path was exercised, not only the refusals.
  EXPECT_GT(loaded, 0);
  EXPECT_LT(loaded, kIterations);
  EXPECT_TRUE(reclaim_all(*memory_));
}

}  // namespace
}  // namespace vmfork::testing
