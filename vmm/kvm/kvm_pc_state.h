// What a PC guest (Platform::kPc: Linux) keeps in KVM beyond a freestanding
// guest's registers, for a fork or a snapshot to carry into a clone: per
// vCPU the XSAVE area, XCR0, every MSR KVM lists, the multiprocessing state,
// the local APIC, pending events and debug registers; per VM the PICs, the
// IOAPIC, the PIT and kvmclock. Set in the order QEMU's KVM code found to
// work (target/i386/kvm/kvm.c): the TSC-deadline MSR only after the local
// APIC, whose timer mode decides whether KVM takes it.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/kvm/kvm_abi.h"

namespace vmfork::kvm {

inline constexpr size_t kMaxPcMsrs = 256;

struct PcCpuState {
  Xsave xsave;
  kvm_xcrs xcrs{};
  kvm_mp_state mp_state{};
  kvm_lapic_state lapic{};
  kvm_vcpu_events events{};
  kvm_debugregs debugregs{};
  uint32_t msr_count = 0;
  std::array<kvm_msr_entry, kMaxPcMsrs> msrs{};  // the first msr_count are valid
};

// Of the vCPU `vcpu_fd` (not in KVM_RUN): `msr_indices` are the MSRs to
// read (KVM_GET_MSR_INDEX_LIST's); those KVM refuses to read are left out.
Result<PcCpuState> get_pc_cpu_state(int vcpu_fd, std::span<const uint32_t> msr_indices);
// Onto a vCPU just created with the VM's CPUID and its sregs/regs set.
// MSRs KVM refuses to write are skipped (counted in the debug log).
Result<void> set_pc_cpu_state(int vcpu_fd, const PcCpuState& state);

struct PcChipState {
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
};

// Of the VM `vm_fd`, every vCPU paused.
Result<PcChipState> get_pc_chips(int vm_fd);
// Onto a VM whose in-kernel chips exist (KVM_CREATE_IRQCHIP, _PIT2), before
// its vCPUs are made.
Result<void> set_pc_chips(int vm_fd, const PcChipState& state);

// KVM_GET_MSR_INDEX_LIST of the host's /dev/kvm fd.
Result<std::vector<uint32_t>> msr_index_list(int kvm_fd);

}  // namespace vmfork::kvm
