// PVM (the kvm_pvm module): KVM without hardware virtualization. It runs a
// guest's CPL0 code natively (on the hardware's CPL3) only when the vCPU has
// registered a "VIF page"; without one it emulates every instruction, at
// about 1 us each. What PVM needs, as read off this project's hosts (the
// module in use is not public; upstream PVM's pvm-spec.rst describes the
// same model):
//   - native execution needs EFER.LMA and CS.S, 4-level paging, canonical
//     RIP/RSP and FS/GS bases, no pending event, and CPL 3 or a VIF page;
//   - the VIF page is a zeroed, page-aligned 4 KiB guest page per vCPU (its
//     virtual IF is 0 while it is zero), registered with KVM_SET_MSRS of
//     kVifMsr = its guest-physical address | kVifEnable. The MSR is not in
//     KVM's MSR index list; a host without PVM does not take it;
//   - every present guest page-table entry needs U/S (vmm/boot sets it
//     everywhere: without it the vCPU livelocks on refaults);
//   - PVM's kernel writes the VIF page, so it must never be a COW-shared,
//     write-protected page. vmfork keeps the VIF pages out of guest RAM
//     altogether: each KVM VM, clones included, gets a memslot of private
//     anonymous memory for them above the largest RAM (kVifBase), and every
//     vCPU registers its page when it is created, so a clone re-registers
//     its own. Guest RAM, snapshots and memory checksums never see them;
//   - natively, `out` costs a round trip of about 40-50 us to the monitor,
//     and `cpuid` is not intercepted (the guest sees the host's CPUID).
#pragma once

#include <cstdint>

#include "vmm/boot/guest_layout.h"

namespace vmfork::kvm {

inline constexpr uint32_t kVifMsr = 0x4b564d10;
inline constexpr uint64_t kVifEnable = 0x400;
// The memslot of a VM's VIF pages: vCPU i's is kVifBase + i * 4 KiB. Above
// any RAM a layout allows, so no guest access to RAM can reach it.
inline constexpr uint32_t kVifSlot = 1;
inline constexpr uint64_t kVifBase = kMaxRamBytes;
inline constexpr uint64_t kVifPageBytes = 4096;

// True when /dev/kvm is served by PVM (/sys/module/kvm_pvm exists).
bool pvm_host();

}  // namespace vmfork::kvm
