// Linux guests (issue 14): what a boot loader does before it jumps to a
// bzImage's 64-bit entry point (Documentation/arch/x86/boot.rst, "64-bit
// Boot Protocol"). Engine-independent: writes the kernel, the initrd, the
// zero page, the command line, a GDT and identity page tables into an
// address space and returns vCPU 0's start state. The other vCPUs wait for
// INIT/SIPI from Linux, so they need none.
//
// Low memory, all inside RAM (unlike the freestanding guests' monitor_area.h):
//
//   0x00500   GDT: null, null, 64-bit code (0x10 = __BOOT_CS), data (0x18 = __BOOT_DS)
//   0x07000   boot_params, the zero page (RSI points here)
//   0x09000   PML4, 0xa000 PDPT, 0xb000-0xefff four PDs: [0, 4 GiB) identity-mapped
//   0x20000   the command line
//   0x9fc00   [0x9fc00, 1 MiB) is reserved in the e820 map (the MP table
//             lives at 0xf0000)
//   kernel_base  the protected-mode kernel, init_size bytes reserved for it
//   initrd_base  the initrd, as high as it may go
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/address_space.h"
#include "vmm/boot/vcpu_boot_state.h"
#include "vmm/loader/linux_image.h"

namespace vmfork {

inline constexpr Gpa kLinuxGdtGpa{0x500};
inline constexpr Gpa kLinuxZeroPageGpa{0x7000};
inline constexpr Gpa kLinuxPml4Gpa{0x9000};
inline constexpr Gpa kLinuxPdptGpa{0xa000};
inline constexpr Gpa kLinuxPdGpa{0xb000};     // the first of four
inline constexpr uint64_t kLinuxPdCount = 4;  // one per GiB of the identity map
inline constexpr Gpa kLinuxCmdlineGpa{0x20000};
inline constexpr Gpa kLinuxReservedStart{0x9fc00};  // the EBDA and the BIOS area, up to 1 MiB
inline constexpr Gpa kLinuxHighMemory{0x100000};    // 1 MiB: where RAM resumes in the e820 map

// The selectors Linux's 64-bit entry requires (__BOOT_CS, __BOOT_DS).
inline constexpr uint16_t kLinuxCodeSelector = 0x10;
inline constexpr uint16_t kLinuxDataSelector = 0x18;
inline constexpr int kLinuxGdtEntries = 4;
inline constexpr uint16_t kLinuxGdtLimit = kLinuxGdtEntries * 8 - 1;

// The 64-bit entry point is this far into the protected-mode kernel.
inline constexpr uint64_t kLinux64BitEntryOffset = 0x200;

static_assert(kLinuxGdtGpa + kLinuxGdtEntries * 8 <= kLinuxZeroPageGpa &&
                  kLinuxZeroPageGpa + kPageSize <= kLinuxPml4Gpa &&
                  kLinuxPml4Gpa + kPageSize == kLinuxPdptGpa &&
                  kLinuxPdptGpa + kPageSize == kLinuxPdGpa &&
                  kLinuxPdGpa + kLinuxPdCount * kPageSize <= kLinuxCmdlineGpa &&
                  kLinuxCmdlineGpa < kLinuxReservedStart && kLinuxReservedStart < kLinuxHighMemory,
              "the low boot structures are ordered and do not overlap");

struct LinuxBoot {
  VcpuBootState bsp;  // vCPU 0's start state, at the 64-bit entry point
  Gpa kernel_base;    // where the protected-mode kernel was written
  Gpa initrd_base;    // 0 when there is no initrd
  uint64_t initrd_bytes = 0;
};

// Places the kernel at its preferred address when it is relocatable (else at
// 1 MiB, from where it moves itself), aligned to kernel_alignment; the initrd
// page-aligned as high as initrd_addr_max and RAM allow, above the kernel's
// init_size. `ram_bytes` is what the e820 map reports, at most the space's
// RAM. Refuses (kInvalidArgument, naming the sizes) a kernel or initrd that
// does not fit, or a command line longer than the kernel takes; a refused
// boot writes nothing.
Result<LinuxBoot> write_linux_boot(AddressSpace& space, uint64_t ram_bytes, const LinuxImage& image,
                                   std::span<const std::byte> initrd, std::string_view cmdline);

}  // namespace vmfork
