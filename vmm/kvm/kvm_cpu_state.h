// The architectural state of one kvm vCPU, as KVM's get/set ioctls hold it:
// what a snapshot keeps and what a clone's vCPU starts from.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <optional>

#include "vmm/boot/vcpu_boot_state.h"
#include "vmm/hypervisor/cpu_state.h"
#include "vmm/kvm/kvm_pc_state.h"

namespace vmfork::kvm {

// The MSRs a snapshot copies besides those kvm_sregs holds (EFER, the
// segment bases): the syscall and sysenter MSRs, the kernel GS base, PAT and
// TSC_AUX. The TSC is not among them: a clone shares its original's clock
// (tsc_offset).
inline constexpr std::array<uint32_t, 10> kSavedMsrs = {
    0xc0000081,  // STAR
    0xc0000082,  // LSTAR
    0xc0000083,  // CSTAR
    0xc0000084,  // SFMASK
    0xc0000102,  // KERNEL_GS_BASE
    0xc0000103,  // TSC_AUX
    0x00000277,  // PAT
    0x00000174,  // SYSENTER_CS
    0x00000175,  // SYSENTER_ESP
    0x00000176,  // SYSENTER_EIP
};

struct SavedMsr {
  uint32_t index = 0;
  uint64_t value = 0;
};

struct KvmCpuState {
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  std::array<SavedMsr, kSavedMsrs.size()> msrs{};
  uint32_t msr_count = 0;  // the first msr_count of msrs are valid
  // The guest TSC's offset from the host's (KVM_VCPU_TSC_OFFSET), when the
  // kernel exposes it; clones take it so their TSC continues the original's.
  std::optional<uint64_t> tsc_offset;
  // Platform::kPc: the rest of what Linux keeps in the vCPU (its XSAVE
  // area supersedes `fpu`). Absent at boot and for freestanding guests.
  std::optional<PcCpuState> pc;
};

// The DESIGN section 8 start state in KVM's terms.
KvmCpuState kvm_start_state(const VcpuBootState& boot);

// To and from the engine-neutral state, losing nothing KVM's ioctls take:
// kvm_fpu and the pending-interrupt bitmap travel as the kvm engine's blob,
// followed by the PcCpuState when there is one.
// Without one (a state another engine made), the FPU starts from its reset
// values and no interrupt is pending.
CpuState to_neutral(const KvmCpuState& state);
KvmCpuState from_neutral(const CpuState& state);

}  // namespace vmfork::kvm
