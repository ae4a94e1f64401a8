// Long-mode boot (DESIGN section 8), engine-independent: writes the
// monitor's structures into guest-physical [0, 1 MiB) of an address space
// and returns the state each vCPU starts with.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/address_space.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/boot/vcpu_boot_state.h"

namespace vmfork {

// What the loaded program contributes (the ELF loader's LoadedElf has these).
struct BootImage {
  Gpa entry;
  Gpa free_base;  // 4 KiB aligned, in [1 MiB, free_end]
  Gpa free_end;   // the bottom of the stacks
};

// vCPU `vcpu`'s start state: RIP = entry, RDI = vcpu, RSI = kBootInfoGpa,
// RSP = top of its stack, RFLAGS = 0x2 (IF = 0), long mode with paging
// (CR3 = kPml4Gpa), flat segments, GDTR = the GDT, no IDT.
// Requires vcpu < layout.vcpu_count().
VcpuBootState initial_vcpu_state(const GuestLayout& layout, Gpa entry, uint32_t vcpu);

// Writes the identity page tables, the GDT and the boot info (clone_id 0)
// into `space`, whose RAM must be the layout's, and returns every vCPU's
// start state, vCPU i at index i. Checks that the image fits the layout.
Result<std::vector<VcpuBootState>> write_boot_layout(AddressSpace& space, const GuestLayout& layout,
                                                     const BootImage& image);

}  // namespace vmfork
