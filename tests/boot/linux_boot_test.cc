// write_linux_boot and Linux's 64-bit boot protocol (boot.rst): where the
// kernel and the initrd go, the zero page's fields and e820 map read back
// from guest memory, the command line, the GDT with __BOOT_CS and __BOOT_DS,
// the identity map the entry needs, vCPU 0's start state, and what it
// refuses. The host's /boot/vmlinuz-* boots the same way when readable.
#include "vmm/boot/linux_boot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boot_test_support.h"
#include "tests/support/host_kernel.h"
#include "vmm/loader/read_file.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 256 * kMiB;

// Zero page offsets from boot.rst ("The zero page", "The real-mode kernel
// header"), written out here independently of <asm/bootparam.h>.
constexpr uint64_t kExtRamdiskImage = 0x0c0;
constexpr uint64_t kExtRamdiskSize = 0x0c4;
constexpr uint64_t kExtCmdLinePtr = 0x0c8;
constexpr uint64_t kE820Entries = 0x1e8;
constexpr uint64_t kHeader = 0x1f1;
constexpr uint64_t kVidMode = 0x1fa;
constexpr uint64_t kBootFlag = 0x1fe;
constexpr uint64_t kHeaderMagic = 0x202;
constexpr uint64_t kVersion = 0x206;
constexpr uint64_t kTypeOfLoader = 0x210;
constexpr uint64_t kLoadFlags = 0x211;
constexpr uint64_t kRamdiskImage = 0x218;
constexpr uint64_t kRamdiskSize = 0x21c;
constexpr uint64_t kHeapEndPtr = 0x224;
constexpr uint64_t kCmdLinePtr = 0x228;
constexpr uint64_t kE820Table = 0x2d0;
constexpr uint64_t kE820EntryBytes = 20;  // addr, size (u64 each), type (u32)

constexpr uint64_t kPrefAddress = 16 * kMiB;
constexpr uint64_t kInitSize = 24 * kMiB;

template <class T>
T read(const AddressSpace& space, uint64_t gpa) {
  T value{};
  unwrap(space.read(Gpa(gpa), std::as_writable_bytes(std::span(&value, 1))));
  return value;
}

template <class T>
T zero_page(const AddressSpace& space, uint64_t offset) {
  return read<T>(space, 0x7000 + offset);
}

struct E820Entry {
  uint64_t addr = 0, size = 0;
  uint32_t type = 0;
  friend bool operator==(const E820Entry&, const E820Entry&) = default;
};

std::vector<E820Entry> e820(const AddressSpace& space) {
  std::vector<E820Entry> entries(zero_page<uint8_t>(space, kE820Entries));
  for (size_t i = 0; i < entries.size(); ++i) {
    const uint64_t at = kE820Table + i * kE820EntryBytes;
    entries[i] = {.addr = zero_page<uint64_t>(space, at),
                  .size = zero_page<uint64_t>(space, at + 8),
                  .type = zero_page<uint32_t>(space, at + 16)};
  }
  return entries;
}

// A setup header as a 2.15 bzImage has it (0x1f1 to 0x26c), the fields
// write_linux_boot copies or overwrites set to recognisable values.
std::vector<std::byte> setup_header() {
  std::vector<std::byte> header(0x26c - kHeader);
  const auto put = [&](uint64_t offset, auto value) {
    std::memcpy(header.data() + (offset - kHeader), &value, sizeof(value));
  };
  put(kVidMode, uint16_t{0xffff});
  put(kBootFlag, uint16_t{0xaa55});
  std::memcpy(header.data() + (kHeaderMagic - kHeader), "HdrS", 4);
  put(kVersion, uint16_t{0x020f});
  put(kLoadFlags, uint8_t{0x01});  // LOADED_HIGH
  return header;
}

class LinuxBootTest : public ::testing::Test {
 protected:
  LinuxBoot boot(std::string_view cmdline = "console=ttyS0") {
    return unwrap(write_linux_boot(*space_, kRam, image_, initrd_, cmdline));
  }
  // The message of a refused boot, which must have written nothing.
  std::string refusal(std::string_view cmdline = "") {
    const Result<LinuxBoot> booted = write_linux_boot(*space_, kRam, image_, initrd_, cmdline);
    if (booted.ok()) {
      ADD_FAILURE() << "a bad boot was accepted";
      return {};
    }
    EXPECT_EQ(booted.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(memory_->frame_counts().data, 0u) << "a refused boot writes nothing";
    return booted.error().message;
  }

  std::unique_ptr<GuestMemory> memory_ = make_memory();
  std::unique_ptr<AddressSpace> space_ = unwrap(memory_->create_space("linux", kRam));
  std::vector<std::byte> header_ = setup_header();
  std::vector<std::byte> kernel_ = pattern(0x10000 + 0x123, 1);
  std::vector<std::byte> initrd_ = pattern(3 * kPageSize + 5, 2);
  LinuxImage image_{.protocol = 0x020f,
                    .setup_header = header_,
                    .kernel = kernel_,
                    .pref_address = kPrefAddress,
                    .init_size = kInitSize,
                    .kernel_alignment = 2 * kMiB,
                    .initrd_addr_max = 0x7fff'ffff,
                    .cmdline_size = 0x7ff,
                    .relocatable = true};
};

#define EXPECT_REFUSED(call, words) \
  EXPECT_NE(call.find(words), std::string::npos) << "expected a message about " << words

TEST_F(LinuxBootTest, RelocatableKernelIsWrittenAtItsPreferredAddress) {
  const LinuxBoot booted = boot();
  EXPECT_EQ(booted.kernel_base, Gpa(kPrefAddress));
  EXPECT_EQ(read_bytes(*space_, booted.kernel_base, kernel_.size()), kernel_);
}

TEST_F(LinuxBootTest, PreferredAddressIsRoundedUpToKernelAlignment) {
  image_.pref_address = kPrefAddress + 0x1000;
  EXPECT_EQ(boot().kernel_base, Gpa(kPrefAddress + 2 * kMiB));
}

TEST_F(LinuxBootTest, NonRelocatableKernelIsWrittenAtOneMiB) {
  image_.relocatable = false;
  const LinuxBoot booted = boot();
  EXPECT_EQ(booted.kernel_base, Gpa(kMiB));
  EXPECT_EQ(read_bytes(*space_, Gpa(kMiB), kernel_.size()), kernel_);
}

TEST_F(LinuxBootTest, InitrdIsPageAlignedAtTheTopOfRamAboveTheKernel) {
  const LinuxBoot booted = boot();
  EXPECT_EQ(booted.initrd_bytes, initrd_.size());
  EXPECT_EQ(booted.initrd_base.page_offset(), 0u);
  EXPECT_LE(booted.initrd_base.value() + initrd_.size(), kRam);
  EXPECT_GT(booted.initrd_base.value() + initrd_.size(), kRam - kPageSize) << "as high as it goes";
  EXPECT_GE(booted.initrd_base.value(), booted.kernel_base.value() + kInitSize);
  EXPECT_EQ(read_bytes(*space_, booted.initrd_base, initrd_.size()), initrd_);
}

TEST_F(LinuxBootTest, InitrdStaysBelowInitrdAddrMax) {
  image_.initrd_addr_max = 128 * kMiB - 1;
  const LinuxBoot booted = boot();
  EXPECT_LE(booted.initrd_base.value() + initrd_.size(), 128 * kMiB);
  EXPECT_GT(booted.initrd_base.value() + initrd_.size(), 128 * kMiB - kPageSize);
}

TEST_F(LinuxBootTest, ZeroPageHoldsTheFileHeaderAndTheLoaderFields) {
  const LinuxBoot booted = boot();
  EXPECT_EQ(zero_page<uint16_t>(*space_, kVidMode), 0xffff) << "copied from the file";
  EXPECT_EQ(zero_page<uint16_t>(*space_, kBootFlag), 0xaa55);
  EXPECT_EQ(zero_page<uint32_t>(*space_, kHeaderMagic), 0x5372'6448u);
  EXPECT_EQ(zero_page<uint16_t>(*space_, kVersion), 0x020f);
  EXPECT_EQ(zero_page<uint8_t>(*space_, kTypeOfLoader), 0xff);
  EXPECT_EQ(zero_page<uint8_t>(*space_, kLoadFlags), 0x81) << "LOADED_HIGH | CAN_USE_HEAP";
  EXPECT_EQ(zero_page<uint16_t>(*space_, kHeapEndPtr), 0xfe00);
  EXPECT_EQ(zero_page<uint32_t>(*space_, kCmdLinePtr), 0x20000u);
  EXPECT_EQ(zero_page<uint32_t>(*space_, kExtCmdLinePtr), 0u);
  EXPECT_EQ(zero_page<uint32_t>(*space_, kRamdiskImage), booted.initrd_base.value());
  EXPECT_EQ(zero_page<uint32_t>(*space_, kRamdiskSize), initrd_.size());
  EXPECT_EQ(zero_page<uint32_t>(*space_, kExtRamdiskImage), 0u);
  EXPECT_EQ(zero_page<uint32_t>(*space_, kExtRamdiskSize), 0u);
}

TEST_F(LinuxBootTest, ZeroPageIsZeroOutsideTheHeaderAndE820) {
  (void)boot();
  const std::vector<std::byte> page = read_bytes(*space_, Gpa(0x7000), kPageSize);
  const auto zero = [&](uint64_t from, uint64_t to) {
    return std::all_of(page.begin() + static_cast<long>(from), page.begin() + static_cast<long>(to),
                       [](std::byte b) { return b == std::byte{0}; });
  };
  EXPECT_TRUE(zero(0, kE820Entries));
  EXPECT_TRUE(zero(kE820Entries + 1, kHeader));
  EXPECT_TRUE(zero(0x26c, kE820Table));
  EXPECT_TRUE(zero(kE820Table + 3 * kE820EntryBytes, kPageSize));
}

TEST_F(LinuxBootTest, NoInitrdLeavesTheRamdiskFieldsZero) {
  initrd_.clear();
  const LinuxBoot booted = boot();
  EXPECT_EQ(booted.initrd_bytes, 0u);
  EXPECT_EQ(booted.initrd_base, Gpa(0));
  EXPECT_EQ(zero_page<uint32_t>(*space_, kRamdiskImage), 0u);
  EXPECT_EQ(zero_page<uint32_t>(*space_, kRamdiskSize), 0u);
}

TEST_F(LinuxBootTest, E820MapsLowRamTheBiosAreaReservedAndHighRam) {
  (void)boot();
  const std::vector<E820Entry> expected = {
      {.addr = 0, .size = 0x9fc00, .type = 1},
      {.addr = 0x9fc00, .size = 0x100000 - 0x9fc00, .type = 2},
      {.addr = 0x100000, .size = kRam - 0x100000, .type = 1},
  };
  EXPECT_EQ(e820(*space_), expected);
}

TEST_F(LinuxBootTest, E820ReportsTheRamAskedFor) {
  ASSERT_TRUE(write_linux_boot(*space_, 128 * kMiB, image_, initrd_, "").ok());
  EXPECT_EQ(e820(*space_).back(), (E820Entry{.addr = kMiB, .size = 127 * kMiB, .type = 1}));
}

TEST_F(LinuxBootTest, CommandLineIsNulTerminatedAt0x20000) {
  (void)boot("console=ttyS0 quiet");
  const std::string expected("console=ttyS0 quiet\0", 20);
  const std::vector<std::byte> bytes = read_bytes(*space_, Gpa(0x20000), expected.size());
  EXPECT_EQ(std::memcmp(bytes.data(), expected.data(), expected.size()), 0);
}

TEST_F(LinuxBootTest, GdtHoldsBootCsAndBootDs) {
  (void)boot();
  // Hand-encoded: null, null; code, L=1 G=1 P=1 S=1 type 0xb; data, D/B=1 G=1 type 3.
  EXPECT_EQ(read_u64(*space_, Gpa(0x500)), 0u);
  EXPECT_EQ(read_u64(*space_, Gpa(0x508)), 0u);
  EXPECT_EQ(read_u64(*space_, Gpa(0x510)), 0x00af'9b00'0000'ffffu);
  EXPECT_EQ(read_u64(*space_, Gpa(0x518)), 0x00cf'9300'0000'ffffu);
}

TEST_F(LinuxBootTest, BspEntersLongModeAtThe64BitEntryWithTheZeroPageInRsi) {
  const LinuxBoot booted = boot();
  const VcpuBootState& s = booted.bsp;
  EXPECT_EQ(s.rip, kPrefAddress + 0x200);
  EXPECT_EQ(s.regs, (GeneralRegisters{.rsi = 0x7000})) << "every other register 0";
  EXPECT_EQ(s.rflags, 0x2u) << "IF clear, reserved bit 1 set";
  EXPECT_EQ(s.cr0, 0x8001'0033u) << "PE MP ET NE WP PG";
  EXPECT_EQ(s.cr4, 0x20u) << "PAE";
  EXPECT_EQ(s.efer, 0x500u) << "LME and LMA";
  EXPECT_EQ(s.cr3, 0x9000u);
  EXPECT_EQ(s.gdtr, (DescriptorTableRegister{.base = 0x500, .limit = 31}));
  EXPECT_EQ(s.idtr, (DescriptorTableRegister{}));
}

TEST_F(LinuxBootTest, SegmentsAreBootCsAndBootDs) {
  const VcpuBootState s = boot().bsp;
  EXPECT_EQ(s.cs, (SegmentRegister{.selector = 0x10,
                                   .base = 0,
                                   .limit = 0xffff'ffff,
                                   .type = 0xb,
                                   .code_or_data = true,
                                   .dpl = 0,
                                   .present = true,
                                   .long_mode = true,
                                   .default_32bit = false,
                                   .granularity = true}));
  const SegmentRegister data{.selector = 0x18,
                             .base = 0,
                             .limit = 0xffff'ffff,
                             .type = 0x3,
                             .code_or_data = true,
                             .dpl = 0,
                             .present = true,
                             .long_mode = false,
                             .default_32bit = true,
                             .granularity = true};
  for (const SegmentRegister* segment : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    EXPECT_EQ(*segment, data);
  }
}

TEST_F(LinuxBootTest, FirstFourGiBAreIdentityMappedWith2MiBPages) {
  const LinuxBoot booted = boot();
  const uint64_t cr3 = booted.bsp.cr3;
  for (const uint64_t address :
       {booted.bsp.rip, booted.kernel_base.value() + kInitSize - 1, uint64_t{0x7000},
        uint64_t{0x20000}, booted.initrd_base.value(), 4 * kGiB - 1}) {
    SCOPED_TRACE(address);
    const std::optional<Translation> t = translate(*space_, cr3, address);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->physical, address);
    EXPECT_EQ(t->page_size, 2 * kMiB);
    EXPECT_TRUE(t->writable);
  }
  EXPECT_FALSE(translate(*space_, cr3, 4 * kGiB).has_value());
  EXPECT_EQ(read_u64(*space_, Gpa(0x9000)) & 0x7, 0x7u) << "P, RW and U/S";
  EXPECT_EQ(read_u64(*space_, Gpa(0xb000)) & 0x87, 0x87u) << "P, RW, U/S and PS";
}

TEST_F(LinuxBootTest, KernelInitSizeBeyondRamIsRefused) {
  image_.init_size = kRam - kPrefAddress + 1;
  EXPECT_REFUSED(refusal(), "init_size");
}

TEST_F(LinuxBootTest, RamLargerThanTheAddressSpaceIsRefused) {
  const Result<LinuxBoot> booted = write_linux_boot(*space_, 2 * kRam, image_, initrd_, "");
  ASSERT_FALSE(booted.ok());
  EXPECT_NE(booted.error().message.find("more than address space"), std::string::npos);
}

TEST_F(LinuxBootTest, InitrdThatDoesNotFitAboveTheKernelIsRefused) {
  // Room for one page between the kernel's end and initrd_addr_max.
  image_.initrd_addr_max = static_cast<uint32_t>(kPrefAddress + kInitSize + kPageSize - 1);
  EXPECT_REFUSED(refusal(), "initrd of 0x3005 bytes does not fit");
}

TEST_F(LinuxBootTest, CommandLineLongerThanCmdlineSizeIsRefused) {
  const std::string longest(0x7fe, 'x');  // plus its NUL: cmdline_size
  EXPECT_REFUSED(refusal(longest + "x"), "cmdline_size of 2047");
  EXPECT_TRUE(write_linux_boot(*space_, kRam, image_, initrd_, longest).ok());
}

TEST_F(LinuxBootTest, CommandLineWithANulIsRefused) {
  EXPECT_REFUSED(refusal(std::string_view("quiet\0x", 7)), "NUL at byte 5");
}

TEST_F(LinuxBootTest, CommandLineRunningIntoTheBiosAreaIsRefused) {
  image_.cmdline_size = 0xffff'ffff;  // the kernel would take it; low memory cannot
  EXPECT_REFUSED(refusal(std::string(0x9fc00 - 0x20000, 'x')), "does not fit between");
}

TEST_F(LinuxBootTest, RelocatableKernelWithoutPowerOfTwoAlignmentIsRefused) {
  image_.kernel_alignment = 3 * kMiB;
  EXPECT_REFUSED(refusal(), "not a power of two");
}

TEST_F(LinuxBootTest, PreferredAddressThatOverflowsWhenAlignedIsRefused) {
  image_.pref_address = ~uint64_t{0} - kPageSize;
  EXPECT_REFUSED(refusal(), "overflows");
}

TEST_F(LinuxBootTest, SetupHeaderLargerThanItsRoomInTheZeroPageIsRefused) {
  header_.resize(0x290 - 0x1f1 + 1);  // would run into edd_mbr_sig_buffer
  image_.setup_header = header_;
  EXPECT_REFUSED(refusal(), "room in the zero page");
}

TEST(LinuxBootAbove4GiB, KernelPastTheIdentityMapIsRefused) {
  const uint64_t ram = 8 * kGiB;  // populated on demand: only what is written costs
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("big", ram));
  const std::vector<std::byte> header = setup_header();
  const std::vector<std::byte> kernel = pattern(0x1000, 4);
  const LinuxImage image{.protocol = 0x020f,
                         .setup_header = header,
                         .kernel = kernel,
                         .pref_address = 4 * kGiB - 2 * kMiB,
                         .init_size = 4 * kMiB,
                         .kernel_alignment = 2 * kMiB,
                         .initrd_addr_max = 0x7fff'ffff,
                         .cmdline_size = 0x7ff,
                         .relocatable = true};
  const Result<LinuxBoot> booted = write_linux_boot(*space, ram, image, {}, "");
  ASSERT_FALSE(booted.ok());
  EXPECT_NE(booted.error().message.find("4 GiB identity map"), std::string::npos)
      << booted.error().message;
}

class HostKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<std::filesystem::path> path = host_kernel();
    if (!path) GTEST_SKIP() << "no readable /boot/vmlinuz-*";
    file_ = unwrap(read_file(*path));
    image_ = unwrap(parse_linux_image(file_));
  }
  std::unique_ptr<GuestMemory> memory_ = make_memory();
  std::vector<std::byte> file_;
  LinuxImage image_;
  std::vector<std::byte> initrd_ = pattern(kMiB + 17, 3);
};

TEST_F(HostKernel, BootsInto256MiB) {
  std::unique_ptr<AddressSpace> space = unwrap(memory_->create_space("linux", kRam));
  const LinuxBoot booted = unwrap(write_linux_boot(*space, kRam, image_, initrd_, "console=ttyS0"));

  EXPECT_EQ(booted.kernel_base.value() % image_.kernel_alignment, 0u);
  EXPECT_EQ(read_bytes(*space, booted.kernel_base, image_.kernel.size()),
            std::vector<std::byte>(image_.kernel.begin(), image_.kernel.end()));
  EXPECT_EQ(read_bytes(*space, booted.initrd_base, initrd_.size()), initrd_);
  EXPECT_GE(booted.initrd_base.value(), booted.kernel_base.value() + image_.init_size)
      << "the initrd is clear of the kernel's decompression";
  EXPECT_LE(booted.initrd_base.value() + initrd_.size(), uint64_t{image_.initrd_addr_max} + 1);

  EXPECT_EQ(zero_page<uint16_t>(*space, kVersion), image_.protocol);
  EXPECT_EQ(zero_page<uint32_t>(*space, kHeaderMagic), 0x5372'6448u);
  EXPECT_EQ(zero_page<uint32_t>(*space, kRamdiskImage), booted.initrd_base.value());
  EXPECT_EQ(zero_page<uint32_t>(*space, kRamdiskSize), initrd_.size());
  EXPECT_EQ(e820(*space).size(), 3u);

  EXPECT_EQ(booted.bsp.rip, booted.kernel_base.value() + 0x200);
  for (const uint64_t address : {booted.bsp.rip, uint64_t{0x7000}, uint64_t{0x20000}}) {
    const std::optional<Translation> t = translate(*space, booted.bsp.cr3, address);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->physical, address);
  }
}

TEST_F(HostKernel, RamTooSmallForInitSizeIsRefused) {
  // The kernel's own init_size, from its preferred address, overflows this.
  const uint64_t too_small = (image_.pref_address + image_.init_size - 1) / (2 * kMiB) * (2 * kMiB);
  std::unique_ptr<AddressSpace> space = unwrap(memory_->create_space("small", too_small));
  const Result<LinuxBoot> booted = write_linux_boot(*space, too_small, image_, initrd_, "");
  ASSERT_FALSE(booted.ok());
  EXPECT_EQ(booted.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(booted.error().message.find("init_size"), std::string::npos);
}

}  // namespace
}  // namespace vmfork::testing
