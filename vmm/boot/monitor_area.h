// Where the monitor puts its boot structures in guest-physical [0, 1 MiB).
// Engines load CR3 and GDTR from these, the fork device rewrites the boot
// info's clone_id here, and the guest finds the boot info through RSI.
//
//   0x0000  left empty (a guest null-pointer read sees zeros, writes are its own)
//   0x1000  boot info (48 bytes, DESIGN section 8)
//   0x2000  GDT: null, 64-bit code (0x08), data (0x10)
//   0x3000  IDT of the monitor's exception reporters (the kvm engine loads
//           it; see exception_handlers.h)
//   0x4000  their code
//   0x10000 PML4, then the PDPT(s), then the PDs, all below 1 MiB
#pragma once

#include <cstdint>

#include "base/types.h"
#include "vmm/boot/guest_layout.h"

namespace vmfork {

inline constexpr Gpa kBootInfoGpa{0x1000};
inline constexpr Gpa kGdtGpa{0x2000};
inline constexpr Gpa kIdtGpa{0x3000};
inline constexpr Gpa kExceptionCodeGpa{0x4000};
inline constexpr Gpa kPml4Gpa{0x10000};
inline constexpr Gpa kPageTablesEnd{kMonitorAreaEnd};

inline constexpr uint16_t kCodeSelector = 0x08;  // GDT entry 1
inline constexpr uint16_t kDataSelector = 0x10;  // GDT entry 2
inline constexpr int kGdtEntries = 3;
inline constexpr uint16_t kGdtLimit = kGdtEntries * 8 - 1;  // GDTR.limit: last valid byte

static_assert(kBootInfoGpa.page_offset() == 0 && kGdtGpa.page_offset() == 0 &&
                  kPml4Gpa.page_offset() == 0,
              "boot structures are page aligned");
static_assert(kBootInfoGpa < kGdtGpa && kGdtGpa < kIdtGpa && kIdtGpa < kExceptionCodeGpa &&
                  kExceptionCodeGpa < kPml4Gpa,
              "boot structures do not overlap");

}  // namespace vmfork
