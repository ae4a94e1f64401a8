#include "vmm/kvm/kvm_pc_state.h"

#include <sys/ioctl.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace vmfork::kvm {

namespace {

constexpr uint32_t kTscDeadlineMsr = 0x6e0;

// KVM_GET_MSRS and KVM_SET_MSRS stop at the first MSR they refuse and
// return how many they did: go on past each refused one.
template <typename Each>
void for_each_msr_run(std::span<kvm_msr_entry> entries, unsigned long request, int fd,
                      Each refused) {
  size_t done = 0;
  while (done < entries.size()) {
    MsrList<kMaxPcMsrs> list;
    const size_t count = entries.size() - done;
    list.nmsrs = static_cast<uint32_t>(count);
    std::memcpy(list.entries.data(), entries.data() + done, count * sizeof(kvm_msr_entry));
    const int n = ioctl(fd, request, &list);
    const size_t ok = n < 0 ? 0 : static_cast<size_t>(n);
    std::memcpy(entries.data() + done, list.entries.data(), ok * sizeof(kvm_msr_entry));
    done += ok;
    if (done < entries.size()) refused(done++);
  }
}

}  // namespace

Result<std::vector<uint32_t>> msr_index_list(int kvm_fd) {
  struct {
    uint32_t nmsrs = kMaxPcMsrs;
    std::array<uint32_t, kMaxPcMsrs> indices{};
  } list;
  if (ioctl(kvm_fd, kGetMsrIndexList, &list) != 0) {
    // E2BIG: KVM wrote how many it has into nmsrs. A PC vCPU's state holds
    // kMaxPcMsrs; carrying only some of them into a clone would be wrong.
    if (errno == E2BIG) {
      return make_error(ErrorCode::kSystem,
                        fmt::format("KVM lists {} MSRs, more than the {} a Linux guest's vCPU "
                                    "state carries (vmm/kvm/kvm_pc_state.h, kMaxPcMsrs)",
                                    list.nmsrs, kMaxPcMsrs));
    }
    return system_error("KVM_GET_MSR_INDEX_LIST");
  }
  return std::vector<uint32_t>(list.indices.begin(), list.indices.begin() + list.nmsrs);
}

Result<PcCpuState> get_pc_cpu_state(int vcpu_fd, std::span<const uint32_t> msr_indices) {
  PcCpuState state;
  if (ioctl(vcpu_fd, kGetXsave, &state.xsave) != 0) return system_error("KVM_GET_XSAVE");
  if (ioctl(vcpu_fd, KVM_GET_XCRS, &state.xcrs) != 0) return system_error("KVM_GET_XCRS");
  if (ioctl(vcpu_fd, KVM_GET_MP_STATE, &state.mp_state) != 0) {
    return system_error("KVM_GET_MP_STATE");
  }
  if (ioctl(vcpu_fd, KVM_GET_LAPIC, &state.lapic) != 0) return system_error("KVM_GET_LAPIC");
  if (ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &state.events) != 0) {
    return system_error("KVM_GET_VCPU_EVENTS");
  }
  if (ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &state.debugregs) != 0) {
    return system_error("KVM_GET_DEBUGREGS");
  }
  std::array<kvm_msr_entry, kMaxPcMsrs> read{};
  const size_t count = std::min(msr_indices.size(), kMaxPcMsrs);
  for (size_t i = 0; i < count; ++i)
    read[i].index = msr_indices[i];
  std::vector<bool> refused(count, false);
  for_each_msr_run(std::span(read.data(), count), kGetMsrs, vcpu_fd,
                   [&refused](size_t i) { refused[i] = true; });
  for (size_t i = 0; i < count; ++i) {
    if (!refused[i]) state.msrs[state.msr_count++] = read[i];
  }
  return state;
}

Result<void> set_pc_cpu_state(int vcpu_fd, const PcCpuState& state) {
  if (ioctl(vcpu_fd, kSetXsave, &state.xsave) != 0) return system_error("KVM_SET_XSAVE");
  if (ioctl(vcpu_fd, KVM_SET_XCRS, &state.xcrs) != 0) return system_error("KVM_SET_XCRS");
  std::array<kvm_msr_entry, kMaxPcMsrs> msrs{};
  size_t count = 0;
  std::optional<kvm_msr_entry> tsc_deadline;
  for (uint32_t i = 0; i < state.msr_count; ++i) {
    if (state.msrs[i].index == kTscDeadlineMsr) {
      tsc_deadline = state.msrs[i];
    } else {
      msrs[count++] = state.msrs[i];
    }
  }
  size_t skipped = 0;
  for_each_msr_run(std::span(msrs.data(), count), kSetMsrs, vcpu_fd, [&](size_t i) {
    ++skipped;
    spdlog::debug("kvm: MSR {:#x} not restored (KVM refused the write)", msrs[i].index);
  });
  if (ioctl(vcpu_fd, KVM_SET_MP_STATE, &state.mp_state) != 0) {
    return system_error("KVM_SET_MP_STATE");
  }
  if (ioctl(vcpu_fd, KVM_SET_LAPIC, &state.lapic) != 0) return system_error("KVM_SET_LAPIC");
  if (tsc_deadline) {
    MsrList<1> one;
    one.entries[0] = *tsc_deadline;
    (void)ioctl(vcpu_fd, kSetMsrs, &one);  // 0 when the timer is not in deadline mode
  }
  if (ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &state.events) != 0) {
    return system_error("KVM_SET_VCPU_EVENTS");
  }
  if (ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &state.debugregs) != 0) {
    return system_error("KVM_SET_DEBUGREGS");
  }
  return Ok{};
}

Result<PcChipState> get_pc_chips(int vm_fd) {
  PcChipState state;
  state.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  state.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  state.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  for (kvm_irqchip* chip : {&state.pic_master, &state.pic_slave, &state.ioapic}) {
    if (ioctl(vm_fd, KVM_GET_IRQCHIP, chip) != 0) return system_error("KVM_GET_IRQCHIP");
  }
  if (ioctl(vm_fd, KVM_GET_PIT2, &state.pit) != 0) return system_error("KVM_GET_PIT2");
  if (ioctl(vm_fd, KVM_GET_CLOCK, &state.clock) != 0) return system_error("KVM_GET_CLOCK");
  return state;
}

Result<void> set_pc_chips(int vm_fd, const PcChipState& state) {
  for (const kvm_irqchip* chip : {&state.pic_master, &state.pic_slave, &state.ioapic}) {
    if (ioctl(vm_fd, KVM_SET_IRQCHIP, chip) != 0) return system_error("KVM_SET_IRQCHIP");
  }
  if (ioctl(vm_fd, KVM_SET_PIT2, &state.pit) != 0) return system_error("KVM_SET_PIT2");
  // The clock's value only: the clone's kvmclock continues the original's.
  kvm_clock_data clock{};
  clock.clock = state.clock.clock;
  if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) != 0) return system_error("KVM_SET_CLOCK");
  return Ok{};
}

}  // namespace vmfork::kvm
