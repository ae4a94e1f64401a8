// parse_linux_image: a minimal bzImage built here parses to its setup header
// and protected-mode kernel; breaking each field the 64-bit boot protocol
// relies on, one at a time, is refused with a message naming the field. The
// host's own /boot/vmlinuz-* parses too, when the tests may read it.
#include "vmm/loader/linux_image.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/guestmm/test_support.h"
#include "tests/support/host_kernel.h"
#include "vmm/loader/read_file.h"

namespace vmfork::testing {
namespace {

// File offsets from Documentation/arch/x86/boot.rst, written out here
// independently of <asm/bootparam.h>.
constexpr size_t kSetupSects = 0x1f1;
constexpr size_t kSysSize = 0x1f4;
constexpr size_t kBootFlag = 0x1fe;
constexpr size_t kJump = 0x200;
constexpr size_t kHeaderMagic = 0x202;
constexpr size_t kVersion = 0x206;
constexpr size_t kLoadFlags = 0x211;
constexpr size_t kInitrdAddrMax = 0x22c;
constexpr size_t kKernelAlignment = 0x230;
constexpr size_t kRelocatable = 0x234;
constexpr size_t kXLoadFlags = 0x236;
constexpr size_t kCmdlineSize = 0x238;
constexpr size_t kPrefAddress = 0x258;
constexpr size_t kInitSize = 0x260;

constexpr uint8_t kSectors = 4;  // setup sectors after the boot sector
constexpr size_t kKernelOffset = (kSectors + 1) * 512;
constexpr size_t kKernelBytes = 0x1000;
constexpr uint8_t kHeaderJump = 0x6a;  // the header ends at 0x26c, as in Linux 6.x

template <class T>
void put(std::vector<std::byte>& file, size_t offset, T value) {
  std::memcpy(file.data() + offset, &value, sizeof(value));
}

// A bzImage with what protocol 2.15 and a 64-bit relocatable kernel have,
// patterned bytes everywhere else, and a kernel of kKernelBytes.
std::vector<std::byte> minimal_bzimage() {
  std::vector<std::byte> file = pattern(kKernelOffset + kKernelBytes, 14);
  // Zero the header's fields first: only those set below mean something.
  std::fill(file.begin() + kSetupSects, file.begin() + kHeaderMagic + kHeaderJump, std::byte{0});
  put<uint8_t>(file, kSetupSects, kSectors);
  put<uint32_t>(file, kSysSize, kKernelBytes / 16);
  put<uint16_t>(file, kBootFlag, 0xaa55);
  put<uint8_t>(file, kJump, 0xeb);  // jmp rel8 over the header
  put<uint8_t>(file, kJump + 1, kHeaderJump);
  std::memcpy(file.data() + kHeaderMagic, "HdrS", 4);
  put<uint16_t>(file, kVersion, 0x020f);
  put<uint8_t>(file, kLoadFlags, 0x01);  // LOADED_HIGH
  put<uint32_t>(file, kInitrdAddrMax, 0x7fff'ffff);
  put<uint32_t>(file, kKernelAlignment, 0x20'0000);
  put<uint8_t>(file, kRelocatable, 1);
  put<uint16_t>(file, kXLoadFlags, 0x0003);  // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
  put<uint32_t>(file, kCmdlineSize, 0x7ff);
  put<uint64_t>(file, kPrefAddress, 0x100'0000);
  put<uint32_t>(file, kInitSize, 0x80'0000);
  return file;
}

// The message of the error parse_linux_image gives for `file`; fails if it
// parses.
std::string refusal(const std::vector<std::byte>& file) {
  const Result<LinuxImage> image = parse_linux_image(file);
  if (image.ok()) {
    ADD_FAILURE() << "a bad file parsed";
    return {};
  }
  EXPECT_EQ(image.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(image.error().message.rfind("bzImage: ", 0), 0u) << image.error().message;
  return image.error().message;
}

#define EXPECT_REFUSED(file, words) \
  EXPECT_NE(refusal(file).find(words), std::string::npos) << "expected a message about " << words

TEST(ParseLinuxImage, MinimalImageGivesHeaderKernelAndFields) {
  const std::vector<std::byte> file = minimal_bzimage();
  const LinuxImage image = unwrap(parse_linux_image(file));
  EXPECT_EQ(image.protocol, 0x020f);
  EXPECT_EQ(image.setup_header.data(), file.data() + 0x1f1);
  EXPECT_EQ(image.setup_header.size(), 0x26cu - 0x1f1u);
  EXPECT_EQ(image.kernel.data(), file.data() + kKernelOffset);
  EXPECT_EQ(image.kernel.size(), kKernelBytes);
  EXPECT_EQ(image.pref_address, 0x100'0000u);
  EXPECT_EQ(image.init_size, 0x80'0000u);
  EXPECT_EQ(image.kernel_alignment, 0x20'0000u);
  EXPECT_EQ(image.initrd_addr_max, 0x7fff'ffffu);
  EXPECT_EQ(image.cmdline_size, 0x7ffu);
  EXPECT_TRUE(image.relocatable);
}

TEST(ParseLinuxImage, KernelRunsToTheEndOfTheFilePastSyssize) {
  // A signature or padding after the kernel proper belongs to the kernel span.
  std::vector<std::byte> file = minimal_bzimage();
  put<uint32_t>(file, kSysSize, kKernelBytes / 16 - 8);
  EXPECT_EQ(unwrap(parse_linux_image(file)).kernel.size(), kKernelBytes);
}

TEST(ParseLinuxImage, ZeroSetupSectsMeansFour) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint8_t>(file, kSetupSects, 0);
  EXPECT_EQ(unwrap(parse_linux_image(file)).kernel.data(), file.data() + 5 * 512);
}

TEST(ParseLinuxImage, NonRelocatableKernelParsesWhateverItsAlignment) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint8_t>(file, kRelocatable, 0);
  put<uint32_t>(file, kKernelAlignment, 0);
  EXPECT_FALSE(unwrap(parse_linux_image(file)).relocatable);
}

TEST(ParseLinuxImage, ShortFilesAreRefused) {
  EXPECT_REFUSED(std::vector<std::byte>{}, "too short");
  std::vector<std::byte> file = minimal_bzimage();
  file.resize(0x263);  // one byte short of init_size's end
  EXPECT_REFUSED(file, "too short");
}

TEST(ParseLinuxImage, MissingBootFlagIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint16_t>(file, kBootFlag, 0x55aa);
  EXPECT_REFUSED(file, "boot flag");
}

TEST(ParseLinuxImage, MissingHdrSMagicIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  std::memcpy(file.data() + kHeaderMagic, "HdrZ", 4);
  EXPECT_REFUSED(file, "\"HdrS\"");
}

TEST(ParseLinuxImage, ProtocolBefore2_12IsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint16_t>(file, kVersion, 0x020b);
  EXPECT_REFUSED(file, "2.11 is older than 2.12");
  put<uint16_t>(file, kVersion, 0x020c);
  EXPECT_TRUE(parse_linux_image(file).ok()) << "2.12 itself is enough";
}

TEST(ParseLinuxImage, KernelNotLoadedHighIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint8_t>(file, kLoadFlags, 0x80);
  EXPECT_REFUSED(file, "LOADED_HIGH");
}

TEST(ParseLinuxImage, KernelWithout64BitEntryIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint16_t>(file, kXLoadFlags, 0x0002);
  EXPECT_REFUSED(file, "XLF_KERNEL_64");
}

TEST(ParseLinuxImage, SetupPastTheEndOfTheFileIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint8_t>(file, kSetupSects, 200);
  EXPECT_REFUSED(file, "setup of 200 sectors");
  // Setup that ends exactly at the end of the file leaves no kernel.
  file = minimal_bzimage();
  file.resize(kKernelOffset);
  EXPECT_REFUSED(file, "no protected-mode kernel");
}

TEST(ParseLinuxImage, KernelPastTheEndOfTheFileIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint32_t>(file, kSysSize, kKernelBytes / 16 + 1);
  EXPECT_REFUSED(file, "syssize");
}

TEST(ParseLinuxImage, HeaderEndingBeforeInitSizeIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint8_t>(file, kJump + 1, 0x5e);  // ends at 0x260, where init_size starts
  EXPECT_REFUSED(file, "before the end of init_size");
}

TEST(ParseLinuxImage, HeaderTooLongForTheZeroPageIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint8_t>(file, kJump + 1, 0x8f);  // ends at 0x291, past edd_mbr_sig_buffer's start
  EXPECT_REFUSED(file, "room in the zero page");
  put<uint8_t>(file, kJump + 1, 0x8e);
  EXPECT_TRUE(parse_linux_image(file).ok()) << "a header up to 0x290 fits";
}

TEST(ParseLinuxImage, ZeroInitSizeIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint32_t>(file, kInitSize, 0);
  EXPECT_REFUSED(file, "init_size is 0");
}

TEST(ParseLinuxImage, RelocatableKernelWithoutPowerOfTwoAlignmentIsRefused) {
  std::vector<std::byte> file = minimal_bzimage();
  put<uint32_t>(file, kKernelAlignment, 0x30'0000);
  EXPECT_REFUSED(file, "not a power of two");
  put<uint32_t>(file, kKernelAlignment, 0);
  EXPECT_REFUSED(file, "not a power of two");
}

TEST(ParseLinuxImage, EveryTruncationIsRefused) {
  // syssize covers the whole kernel, so no prefix of the file is a kernel.
  const std::vector<std::byte> whole = minimal_bzimage();
  for (size_t size = 0; size < whole.size(); size += 7) {
    SCOPED_TRACE(size);
    const std::vector<std::byte> prefix(whole.begin(), whole.begin() + static_cast<long>(size));
    EXPECT_FALSE(parse_linux_image(prefix).ok());
  }
}

TEST(ParseLinuxImage, HostKernelParsesAs64BitProtocol2_12OrLater) {
  const std::optional<std::filesystem::path> path = host_kernel();
  if (!path) GTEST_SKIP() << "no readable /boot/vmlinuz-*";
  const std::vector<std::byte> file = unwrap(read_file(*path));
  const LinuxImage image = unwrap(parse_linux_image(file));
  EXPECT_GE(image.protocol, 0x020c);
  EXPECT_NE(std::to_integer<int>(file[kXLoadFlags]) & 1, 0) << "XLF_KERNEL_64";
  EXPECT_GT(image.kernel.size(), 0u);
  EXPECT_GE(image.init_size, image.kernel.size()) << "it decompresses in place";
  EXPECT_GE(image.cmdline_size, 255u);
}

}  // namespace
}  // namespace vmfork::testing
