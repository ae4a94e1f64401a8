// parse_elf: a valid executable parses to its entry and segments; each rule
// of DESIGN section 8 (and of ELF itself) that a file breaks is refused with
// a message naming that rule.
#include "vmm/loader/elf_image.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "elf_builder.h"
#include "tests/guestmm/test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 8 * kMiB;
constexpr uint32_t kVcpus = 2;
const GuestLayout kLayout = unwrap(GuestLayout::create(kRam, kVcpus));
// 8 MiB - 2 * 64 KiB.
constexpr uint64_t kStacksBottom = kRam - 2 * (64 << 10);

// The message of the error parse_elf gives for `file`; fails if it parses.
std::string refusal(const std::vector<std::byte>& file) {
  const Result<ElfImage> image = parse_elf(file, kLayout);
  if (image.ok()) {
    ADD_FAILURE() << "a bad file parsed";
    return {};
  }
  EXPECT_EQ(image.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(image.error().message.rfind("ELF: ", 0), 0u) << image.error().message;
  return image.error().message;
}

#define EXPECT_REFUSED(file, words) \
  EXPECT_NE(refusal(file).find(words), std::string::npos) << "expected a message about " << words

TEST(ParseElf, TypicalExecutableGivesEntryAndSortedSegments) {
  ElfBuilder elf = ElfBuilder::typical();
  std::swap(elf.segments[0], elf.segments[1]);  // table order must not matter
  const ElfImage image = unwrap(parse_elf(elf.build(), kLayout));
  EXPECT_EQ(image.entry, Gpa(kProgramBase));
  ASSERT_EQ(image.segments.size(), 2u) << "PT_GNU_STACK is not loaded";
  EXPECT_EQ(image.segments[0].start, Gpa(kProgramBase));
  EXPECT_EQ(image.segments[0].file_bytes, 3u);
  EXPECT_TRUE(image.segments[0].executable);
  EXPECT_FALSE(image.segments[0].writable);
  EXPECT_EQ(image.segments[1].start, Gpa(kProgramBase + 0x10000));
  EXPECT_EQ(image.segments[1].file_bytes, 10u);
  EXPECT_EQ(image.segments[1].memory_bytes, 0x3000u);
  EXPECT_TRUE(image.segments[1].writable);
}

TEST(ParseElf, EmptyAndShortFilesAreRefused) {
  EXPECT_REFUSED(std::vector<std::byte>{}, "magic");
  std::vector<std::byte> file = ElfBuilder::typical().build();
  file.resize(40);
  EXPECT_REFUSED(file, "shorter than an ELF64 header");
}

TEST(ParseElf, BadMagicIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  file[1] = std::byte{'e'};
  EXPECT_REFUSED(file, "magic");
}

TEST(ParseElf, Elf32IsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  file[EI_CLASS] = std::byte{ELFCLASS32};
  EXPECT_REFUSED(file, "ELFCLASS64");
}

TEST(ParseElf, BigEndianIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  file[EI_DATA] = std::byte{ELFDATA2MSB};
  EXPECT_REFUSED(file, "little-endian");
}

TEST(ParseElf, UnknownVersionIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  file[EI_VERSION] = std::byte{2};
  EXPECT_REFUSED(file, "version");
  file = ElfBuilder::typical().build();
  patch<uint32_t>(file, offsetof(Elf64_Ehdr, e_version), 0);
  EXPECT_REFUSED(file, "version");
}

TEST(ParseElf, OtherMachineIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  patch<uint16_t>(file, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64);
  EXPECT_REFUSED(file, "x86-64");
}

TEST(ParseElf, OnlyExecTypeIsAccepted) {
  for (const int type : {ET_NONE, ET_REL, ET_DYN, ET_CORE}) {
    SCOPED_TRACE(type);
    std::vector<std::byte> file = ElfBuilder::typical().build();
    patch<uint16_t>(file, offsetof(Elf64_Ehdr, e_type), static_cast<uint16_t>(type));
    EXPECT_REFUSED(file, "ET_EXEC");
  }
}

TEST(ParseElf, WrongHeaderSizeIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  patch<uint16_t>(file, offsetof(Elf64_Ehdr, e_ehsize), 52);
  EXPECT_REFUSED(file, "header size");
}

TEST(ParseElf, WrongProgramHeaderEntrySizeIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  patch<uint16_t>(file, offsetof(Elf64_Ehdr, e_phentsize), 32);
  EXPECT_REFUSED(file, "entry size");
}

TEST(ParseElf, NoProgramHeadersIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  patch<uint16_t>(file, offsetof(Elf64_Ehdr, e_phnum), 0);
  EXPECT_REFUSED(file, "no program headers");
  patch<uint16_t>(file, offsetof(Elf64_Ehdr, e_phnum), PN_XNUM);
  EXPECT_REFUSED(file, "PN_XNUM");
}

TEST(ParseElf, ProgramHeaderTablePastTheFileIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  patch<uint16_t>(file, offsetof(Elf64_Ehdr, e_phnum), 1000);
  EXPECT_REFUSED(file, "program header table");
  file = ElfBuilder::typical().build();
  patch<uint64_t>(file, offsetof(Elf64_Ehdr, e_phoff), file.size() - 8);
  EXPECT_REFUSED(file, "program header table");
  patch<uint64_t>(file, offsetof(Elf64_Ehdr, e_phoff), ~uint64_t{0} - 16);  // sum overflows
  EXPECT_REFUSED(file, "program header table");
}

TEST(ParseElf, NoLoadSegmentIsRefused) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments = {{.type = PT_NOTE, .flags = PF_R, .paddr = 0, .data = {}, .memsz = 0}};
  EXPECT_REFUSED(elf.build(), "no PT_LOAD");
  elf.segments = {{.type = PT_LOAD, .flags = PF_X, .paddr = kProgramBase, .data = {}, .memsz = 0}};
  EXPECT_REFUSED(elf.build(), "empty");
}

TEST(ParseElf, DynamicLinkingIsRefused) {
  for (const uint32_t type : {uint32_t{PT_INTERP}, uint32_t{PT_DYNAMIC}}) {
    ElfBuilder elf = ElfBuilder::typical();
    elf.segments.push_back({.type = type, .flags = PF_R, .paddr = 0, .data = {}, .memsz = 0});
    EXPECT_REFUSED(elf.build(), "dynamic linking");
  }
}

TEST(ParseElf, SegmentFileRangePastTheFileIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  patch<uint64_t>(file, program_header(1) + offsetof(Elf64_Phdr, p_filesz), 0x100);
  EXPECT_REFUSED(file, "past the end of the file");
  file = ElfBuilder::typical().build();
  patch<uint64_t>(file, program_header(0) + offsetof(Elf64_Phdr, p_offset), ~uint64_t{0});
  EXPECT_REFUSED(file, "past the end of the file");  // offset + size overflows
}

TEST(ParseElf, FileSizeAboveMemorySizeIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  patch<uint64_t>(file, program_header(1) + offsetof(Elf64_Phdr, p_memsz), 4);
  EXPECT_REFUSED(file, "larger than p_memsz");
}

TEST(ParseElf, VirtualAddressOtherThanPhysicalIsRefused) {
  std::vector<std::byte> file = ElfBuilder::typical().build();
  patch<uint64_t>(file, program_header(1) + offsetof(Elf64_Phdr, p_vaddr), 0xffff'ffff'8000'0000);
  EXPECT_REFUSED(file, "identity-mapped");
}

TEST(ParseElf, SegmentWrappingAroundIsRefused) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].paddr = ~uint64_t{0} - 0x100;
  EXPECT_REFUSED(elf.build(), "wraps around");
}

TEST(ParseElf, SegmentBelowOneMiBIsRefused) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].paddr = kProgramBase - 0x1000;  // ends inside [1 MiB, ...) but starts below
  EXPECT_REFUSED(elf.build(), "outside the guest's program area");
}

TEST(ParseElf, SegmentIntoTheStacksIsRefused) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].paddr = kStacksBottom - 0x1000;  // 0x3000 of memory: 0x2000 into the stacks
  EXPECT_REFUSED(elf.build(), "outside the guest's program area");
  elf.segments[1].paddr = kRam + kMiB;
  EXPECT_REFUSED(elf.build(), "outside the guest's program area");
}

TEST(ParseElf, SegmentEndingExactlyAtTheStacksIsAccepted) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].paddr = kStacksBottom - 0x3000;
  const ElfImage image = unwrap(parse_elf(elf.build(), kLayout));
  EXPECT_EQ(image.segments.back().end(), Gpa(kStacksBottom));
}

TEST(ParseElf, OverlappingSegmentsAreRefused) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].paddr = kProgramBase + 2;  // the code segment is 3 bytes long
  EXPECT_REFUSED(elf.build(), "overlap");
}

TEST(ParseElf, AdjacentSegmentsAreAccepted) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.segments[1].paddr = kProgramBase + 3;
  EXPECT_TRUE(IsOk(parse_elf(elf.build(), kLayout)));
}

TEST(ParseElf, EntryOutsideEverySegmentIsRefused) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.entry = kProgramBase + 3;  // one past the code
  EXPECT_REFUSED(elf.build(), "in no PT_LOAD segment");
  elf.entry = 0;
  EXPECT_REFUSED(elf.build(), "in no PT_LOAD segment");
}

TEST(ParseElf, EntryInADataSegmentIsRefused) {
  ElfBuilder elf = ElfBuilder::typical();
  elf.entry = kProgramBase + 0x10000;
  EXPECT_REFUSED(elf.build(), "not executable");
}

}  // namespace
}  // namespace vmfork::testing
