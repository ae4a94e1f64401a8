#include "vmm/boot/linux_boot.h"

#include <asm/bootparam.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "vmm/boot/gdt.h"
#include "vmm/boot/x86_bits.h"

namespace vmfork {
namespace {

// The zero page is built in host order, which is the guest's.
static_assert(std::endian::native == std::endian::little);
static_assert(sizeof(boot_params) == kPageSize, "the zero page is one page");

constexpr size_t kHeaderOffset = offsetof(boot_params, hdr);  // 0x1f1, as in the file
// The header's room in the zero page ends where edd_mbr_sig_buffer begins.
constexpr size_t kHeaderRoom = offsetof(boot_params, edd_mbr_sig_buffer) - kHeaderOffset;

constexpr uint8_t kLoaderUndefined = 0xff;  // type_of_loader: "undefined", no ID assigned
constexpr uint16_t kHeapEnd = 0xfe00;       // heap_end_ptr, relative to the real-mode code
constexpr uint32_t kE820Ram = 1;
constexpr uint32_t kE820Reserved = 2;
constexpr uint64_t kIdentityMapEnd = kLinuxPdCount * x86::kPdSpan;  // 4 GiB

// As in page_tables.cc: A, and D in the leaves, preset so that the guest's
// walks never write the tables and clones keep sharing them.
constexpr uint64_t kNonLeaf =
    x86::kPtePresent | x86::kPteWritable | x86::kPteUser | x86::kPteAccessed;
constexpr uint64_t kLeaf2M = kNonLeaf | x86::kPteDirty | x86::kPtePageSize;

using Table = std::array<uint64_t, x86::kEntriesPerTable>;

Error bad(const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, "Linux boot: " + what);
}

std::string hex(uint64_t value) {
  return fmt::format("{:#x}", value);
}

// Where everything goes, decided before anything is written.
struct Placement {
  Gpa kernel_base;
  uint64_t kernel_end = 0;  // kernel_base + init_size (or the file's kernel, if longer)
  Gpa initrd_base;
};

// Fills in kernel_base and kernel_end.
Result<Placement> place_kernel(uint64_t ram_bytes, const LinuxImage& image) {
  uint64_t base = kLinuxHighMemory.value();
  if (image.relocatable) {
    if (!std::has_single_bit(image.kernel_alignment)) {
      return bad("relocatable kernel's kernel_alignment " + hex(image.kernel_alignment) +
                 " is not a power of two");
    }
    // Below 1 MiB is ours (and the BIOS's): a lower preference is not taken.
    base = std::max(base, image.pref_address);
    const uint64_t mask = uint64_t{image.kernel_alignment} - 1;
    if (__builtin_add_overflow(base, mask, &base)) {
      return bad("preferred address " + hex(image.pref_address) + " overflows when aligned");
    }
    base &= ~mask;
  }
  const uint64_t footprint = std::max<uint64_t>(image.init_size, image.kernel.size());
  uint64_t kernel_end = 0;
  if (__builtin_add_overflow(base, footprint, &kernel_end) || kernel_end > ram_bytes) {
    return bad("kernel at " + hex(base) + " needs " + hex(footprint) +
               " bytes (init_size), more than RAM of " + hex(ram_bytes) + " bytes holds");
  }
  if (kernel_end > kIdentityMapEnd) {
    return bad("kernel at " + hex(base) + " with " + hex(footprint) +
               " bytes (init_size) ends past the 4 GiB identity map");
  }
  return Placement{.kernel_base = Gpa(base), .kernel_end = kernel_end, .initrd_base = Gpa(0)};
}

// As high as possible, page-aligned: the kernel decompresses upwards from
// kernel_base, and the initrd must stay clear of that.
Result<Gpa> place_initrd(uint64_t ram_bytes, const LinuxImage& image, uint64_t kernel_end,
                         uint64_t initrd_bytes) {
  if (initrd_bytes == 0) return Gpa(0);
  const uint64_t top = std::min(ram_bytes, uint64_t{image.initrd_addr_max} + 1);
  if (initrd_bytes > top || ((top - initrd_bytes) & ~kPageOffsetMask) < kernel_end) {
    return bad("initrd of " + hex(initrd_bytes) + " bytes does not fit between the kernel's end " +
               hex(kernel_end) + " and " + hex(top) + " (min of RAM " + hex(ram_bytes) +
               " and initrd_addr_max + 1)");
  }
  return Gpa((top - initrd_bytes) & ~kPageOffsetMask);
}

Result<void> check_cmdline(const LinuxImage& image, std::string_view cmdline) {
  // The NUL counts too: a command line of exactly cmdline_size bytes is
  // refused, one byte stricter than boot.rst requires.
  const uint64_t bytes = uint64_t{cmdline.size()} + 1;
  if (bytes > image.cmdline_size) {
    return bad("command line of " + std::to_string(cmdline.size()) +
               " bytes plus its NUL exceeds the kernel's cmdline_size of " +
               std::to_string(image.cmdline_size) + " bytes");
  }
  if (bytes > kLinuxReservedStart.value() - kLinuxCmdlineGpa.value()) {
    return bad("command line of " + std::to_string(cmdline.size()) +
               " bytes does not fit between " + hex(kLinuxCmdlineGpa.value()) + " and " +
               hex(kLinuxReservedStart.value()));
  }
  if (const size_t nul = cmdline.find('\0'); nul != std::string_view::npos) {
    return bad("command line holds a NUL at byte " + std::to_string(nul) +
               ": the kernel would see only what precedes it");
  }
  return Ok{};
}

Result<Placement> place(const AddressSpace& space, uint64_t ram_bytes, const LinuxImage& image,
                        uint64_t initrd_bytes, std::string_view cmdline) {
  if (ram_bytes > space.ram_bytes()) {
    return bad("e820 RAM of " + hex(ram_bytes) + " bytes is more than address space " +
               space.name() + " has (" + hex(space.ram_bytes()) + " bytes)");
  }
  if (image.setup_header.size() > kHeaderRoom) {
    return bad("setup header of " + std::to_string(image.setup_header.size()) +
               " bytes is larger than its room in the zero page (" + std::to_string(kHeaderRoom) +
               " bytes)");
  }
  Result<Placement> placement = place_kernel(ram_bytes, image);
  if (!placement) return placement.error();
  Result<Gpa> initrd = place_initrd(ram_bytes, image, placement->kernel_end, initrd_bytes);
  if (!initrd) return initrd.error();
  placement->initrd_base = *initrd;
  if (Result<void> checked = check_cmdline(image, cmdline); !checked) return checked.error();
  return placement;
}

// The zero page (boot.rst, "Details of header fields" and "The zero page"):
// the file's setup header, then what the boot loader must fill in.
boot_params zero_page(uint64_t ram_bytes, const LinuxImage& image, const Placement& placement,
                      uint64_t initrd_bytes) {
  // The header may be longer than this struct knows (a newer protocol): it
  // is copied as bytes, up to its room.
  std::array<std::byte, sizeof(boot_params)> page{};
  std::memcpy(page.data() + kHeaderOffset, image.setup_header.data(), image.setup_header.size());
  boot_params params;
  std::memcpy(&params, page.data(), sizeof(params));

  setup_header& hdr = params.hdr;
  hdr.type_of_loader = kLoaderUndefined;
  hdr.loadflags = static_cast<uint8_t>(hdr.loadflags | CAN_USE_HEAP);
  hdr.heap_end_ptr = kHeapEnd;
  // Every low structure is below 4 GiB: the ext_ halves stay 0.
  hdr.cmd_line_ptr = static_cast<uint32_t>(kLinuxCmdlineGpa.value());
  params.ext_cmd_line_ptr = 0;
  const uint64_t initrd = placement.initrd_base.value();
  hdr.ramdisk_image = static_cast<uint32_t>(initrd);
  hdr.ramdisk_size = static_cast<uint32_t>(initrd_bytes);
  params.ext_ramdisk_image = static_cast<uint32_t>(initrd >> 32);
  params.ext_ramdisk_size = static_cast<uint32_t>(initrd_bytes >> 32);

  // place_kernel checked that RAM reaches past 1 MiB.
  const std::array<boot_e820_entry, 3> e820{{
      {.addr = 0, .size = kLinuxReservedStart.value(), .type = kE820Ram},
      {.addr = kLinuxReservedStart.value(),
       .size = kLinuxHighMemory.value() - kLinuxReservedStart.value(),
       .type = kE820Reserved},
      {.addr = kLinuxHighMemory.value(),
       .size = ram_bytes - kLinuxHighMemory.value(),
       .type = kE820Ram},
  }};
  static_assert(e820.size() <= E820_MAX_ENTRIES_ZEROPAGE);
  std::memcpy(params.e820_table, e820.data(), sizeof(e820));
  params.e820_entries = static_cast<uint8_t>(e820.size());
  return params;
}

Result<void> write_table(AddressSpace& space, Gpa at, const Table& table) {
  return space.write(at, std::as_bytes(std::span(table)));
}

// [0, 4 GiB) identity-mapped with 2 MiB pages, whatever the RAM: the entry
// needs the kernel's init_size, the zero page and the command line mapped,
// and mapping addresses without RAM costs nothing until they are touched.
Result<void> write_linux_page_tables(AddressSpace& space) {
  Table pml4{};
  pml4[0] = kLinuxPdptGpa.value() | kNonLeaf;
  if (Result<void> written = write_table(space, kLinuxPml4Gpa, pml4); !written) return written;
  Table pdpt{};
  for (uint64_t i = 0; i < kLinuxPdCount; ++i)
    pdpt[i] = (kLinuxPdGpa + i * kPageSize).value() | kNonLeaf;
  if (Result<void> written = write_table(space, kLinuxPdptGpa, pdpt); !written) return written;
  for (uint64_t d = 0; d < kLinuxPdCount; ++d) {
    Table pd{};
    for (uint64_t i = 0; i < x86::kEntriesPerTable; ++i) {
      pd[i] = (d * x86::kEntriesPerTable + i) * x86::kLargePageSize | kLeaf2M;
    }
    if (Result<void> written = write_table(space, kLinuxPdGpa + d * kPageSize, pd); !written) {
      return written;
    }
  }
  return Ok{};
}

SegmentRegister linux_code_segment() {
  SegmentRegister segment = flat_code_segment();
  segment.selector = kLinuxCodeSelector;
  return segment;
}

SegmentRegister linux_data_segment() {
  SegmentRegister segment = flat_data_segment();
  segment.selector = kLinuxDataSelector;
  return segment;
}

Result<void> write_linux_gdt(AddressSpace& space) {
  std::array<uint64_t, kLinuxGdtEntries> gdt{};
  gdt[kLinuxCodeSelector / 8] = encode_segment_descriptor(linux_code_segment());
  gdt[kLinuxDataSelector / 8] = encode_segment_descriptor(linux_data_segment());
  return space.write(kLinuxGdtGpa, std::as_bytes(std::span(gdt)));
}

// boot.rst, "64-bit Boot Protocol": long mode with paging, the zero page in
// RSI, __BOOT_CS and __BOOT_DS flat, interrupts off.
VcpuBootState bsp_state(Gpa kernel_base) {
  VcpuBootState state;
  state.rip = (kernel_base + kLinux64BitEntryOffset).value();
  state.regs.rsi = kLinuxZeroPageGpa.value();
  state.rflags = x86::kRflagsReserved1;  // IF = 0
  state.cr0 = x86::kCr0Pe | x86::kCr0Mp | x86::kCr0Et | x86::kCr0Ne | x86::kCr0Wp | x86::kCr0Pg;
  state.cr3 = kLinuxPml4Gpa.value();
  state.cr4 = x86::kCr4Pae;  // Linux turns on what else it wants itself
  state.efer = x86::kEferLme | x86::kEferLma;
  state.cs = linux_code_segment();
  state.ds = state.es = state.fs = state.gs = state.ss = linux_data_segment();
  state.gdtr = {.base = kLinuxGdtGpa.value(), .limit = kLinuxGdtLimit};
  state.idtr = {.base = 0, .limit = 0};
  return state;
}

}  // namespace

Result<LinuxBoot> write_linux_boot(AddressSpace& space, uint64_t ram_bytes, const LinuxImage& image,
                                   std::span<const std::byte> initrd, std::string_view cmdline) {
  Result<Placement> placed = place(space, ram_bytes, image, initrd.size(), cmdline);
  if (!placed) return placed.error();
  const Placement& placement = *placed;

  if (Result<void> w = space.write(placement.kernel_base, image.kernel); !w) return w.error();
  if (!initrd.empty()) {
    if (Result<void> w = space.write(placement.initrd_base, initrd); !w) return w.error();
  }
  const boot_params params = zero_page(ram_bytes, image, placement, initrd.size());
  if (Result<void> w = space.write(kLinuxZeroPageGpa, std::as_bytes(std::span(&params, 1))); !w) {
    return w.error();
  }
  std::string terminated(cmdline);
  terminated.push_back('\0');
  if (Result<void> w = space.write(kLinuxCmdlineGpa, std::as_bytes(std::span(terminated))); !w) {
    return w.error();
  }
  if (Result<void> w = write_linux_gdt(space); !w) return w.error();
  if (Result<void> w = write_linux_page_tables(space); !w) return w.error();

  return LinuxBoot{.bsp = bsp_state(placement.kernel_base),
                   .kernel_base = placement.kernel_base,
                   .initrd_base = placement.initrd_base,
                   .initrd_bytes = initrd.size()};
}

}  // namespace vmfork
