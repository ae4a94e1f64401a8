#include "vmm/loader/linux_image.h"

#include <asm/bootparam.h>
#include <fmt/format.h>

#include <bit>
#include <cstddef>
#include <cstring>
#include <string>

namespace vmfork {
namespace {

// The header is copied out of the file with memcpy (the file need not be
// aligned) and read in host order, which is the file's: x86 is little-endian.
static_assert(std::endian::native == std::endian::little,
              "the loader reads setup header fields in host order");

// File offsets of the setup header (boot.rst, "The real-mode kernel header"):
// it sits at the same offset in the file as in the zero page.
constexpr size_t kHeaderOffset = offsetof(boot_params, hdr);
constexpr size_t kJumpOffset = kHeaderOffset + offsetof(setup_header, jump);
// The header runs from 0x1f1 to 0x202 plus the jump's displacement byte.
constexpr size_t kHeaderEndBase = kJumpOffset + 2;
// init_size (protocol 2.10) is the last field read here: the header must
// reach past it, and so must the file.
constexpr size_t kInitSizeEnd =
    kHeaderOffset + offsetof(setup_header, init_size) + sizeof(setup_header::init_size);
// The zero page's next field after the header's room (edd_mbr_sig_buffer).
constexpr size_t kHeaderRoomEnd = offsetof(boot_params, edd_mbr_sig_buffer);

static_assert(kHeaderOffset == 0x1f1 && kHeaderEndBase == 0x202 && kInitSizeEnd == 0x264 &&
              kHeaderRoomEnd == 0x290);
static_assert(sizeof(setup_header) <= kHeaderRoomEnd - kHeaderOffset);

constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x5372'6448;  // "HdrS", little-endian
constexpr uint32_t kSectorBytes = 512;
constexpr uint32_t kDefaultSetupSects = 4;  // what setup_sects = 0 means
constexpr uint32_t kSysSizeUnit = 16;       // syssize counts 16-byte paragraphs

Error bzimage_error(const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, "bzImage: " + what);
}

std::string hex(uint64_t value) {
  return fmt::format("{:#x}", value);
}

}  // namespace

Result<LinuxImage> parse_linux_image(std::span<const std::byte> file) {
  if (file.size() < kInitSizeEnd) {
    return bzimage_error("file of " + std::to_string(file.size()) +
               " bytes is too short for a setup header ending at init_size (" + hex(kInitSizeEnd) +
               " bytes)");
  }
  // Every field read below lies before kInitSizeEnd, inside the file; the
  // header copy is padded with zeros where the file's header is shorter.
  setup_header hdr{};
  std::memcpy(&hdr, file.data() + kHeaderOffset, kInitSizeEnd - kHeaderOffset);

  if (hdr.boot_flag != kBootFlag) {
    return bzimage_error("boot flag at 0x1fe is " + hex(hdr.boot_flag) + ", not 0xaa55");
  }
  if (hdr.header != kHeaderMagic) {
    return bzimage_error("no \"HdrS\" magic at 0x202 (found " + hex(hdr.header) +
               "): a kernel older than boot protocol 2.00, or not a kernel");
  }
  if (hdr.version < kLinuxMinProtocol) {
    return bzimage_error(fmt::format("boot protocol {}.{:02} is older than 2.12 (no xloadflags)",
                           hdr.version >> 8, hdr.version & 0xff));
  }

  const uint32_t setup_sects = hdr.setup_sects == 0 ? kDefaultSetupSects : hdr.setup_sects;
  const uint64_t setup_bytes = uint64_t{setup_sects + 1} * kSectorBytes;
  if (setup_bytes >= file.size()) {
    return bzimage_error("setup of " + std::to_string(setup_sects) + " sectors plus the boot sector (" +
               std::to_string(setup_bytes) + " bytes) reaches past the end of the file (" +
               std::to_string(file.size()) + " bytes): no protected-mode kernel");
  }
  const uint64_t kernel_bytes = file.size() - setup_bytes;
  const uint64_t syssize_bytes = uint64_t{hdr.syssize} * kSysSizeUnit;
  if (syssize_bytes > kernel_bytes) {
    return bzimage_error("protected-mode kernel of " + std::to_string(syssize_bytes) +
               " bytes (syssize) extends past the end of the file: only " +
               std::to_string(kernel_bytes) + " bytes follow the setup");
  }

  // setup_bytes >= 5 sectors, so the header's end (at most 0x301) lies in
  // the file.
  const size_t header_end = kHeaderEndBase + std::to_integer<size_t>(file[kJumpOffset + 1]);
  if (header_end < kInitSizeEnd) {
    return bzimage_error("setup header ends at " + hex(header_end) + " (0x202 + the jump at 0x201), before " +
               "the end of init_size at " + hex(kInitSizeEnd));
  }
  if (header_end > kHeaderRoomEnd) {
    return bzimage_error("setup header ends at " + hex(header_end) +
               " (0x202 + the jump at 0x201), past its room in the zero page, which ends at " +
               hex(kHeaderRoomEnd));
  }

  if ((hdr.loadflags & LOADED_HIGH) == 0) {
    return bzimage_error("loadflags " + hex(hdr.loadflags) +
               " lack LOADED_HIGH: the kernel wants to be loaded at 0x10000 (zImage)");
  }
  if ((hdr.xloadflags & XLF_KERNEL_64) == 0) {
    return bzimage_error("xloadflags " + hex(hdr.xloadflags) +
               " lack XLF_KERNEL_64: the kernel has no 64-bit entry point");
  }
  if (hdr.init_size == 0) return bzimage_error("init_size is 0");
  const bool relocatable = hdr.relocatable_kernel != 0;
  if (relocatable && !std::has_single_bit(hdr.kernel_alignment)) {
    return bzimage_error("relocatable kernel's kernel_alignment " + hex(hdr.kernel_alignment) +
               " is not a power of two");
  }

  return LinuxImage{.protocol = hdr.version,
                    .setup_header = file.subspan(kHeaderOffset, header_end - kHeaderOffset),
                    .kernel = file.subspan(setup_bytes),
                    .pref_address = hdr.pref_address,
                    .init_size = hdr.init_size,
                    .kernel_alignment = hdr.kernel_alignment,
                    .initrd_addr_max = hdr.initrd_addr_max,
                    .cmdline_size = hdr.cmdline_size,
                    .relocatable = relocatable};
}

}  // namespace vmfork
