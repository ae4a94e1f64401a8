#include "vmm/kvm/kvm_machine.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "guestmm/guest_memory.h"
#include "vmm/kvm/pvm.h"

namespace vmfork::kvm {

namespace {

constexpr uint32_t kRamSlot = 0;
// KVM_SET_TSS_ADDR wants three pages of guest-physical space outside RAM
// (Intel only, for real-mode emulation; vCPUs here start in long mode).
constexpr uint64_t kTssAddress = 0xfffbd000;

// The mapping budget of one VM: a share of the process's limit.
uint64_t mapping_budget() {
  uint64_t limit = 65530;
  if (FILE* file = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    unsigned long long value = 0;
    if (std::fscanf(file, "%llu", &value) == 1 && value > 0) limit = value;
    std::fclose(file);
  }
  return std::max<uint64_t>(limit / 4, 256);
}

// The local APIC as a PC's BIOS leaves it (SDM vol. 3A, 11.4 and 11.5.1).
constexpr uint64_t kApicBase = 0xfee00000;
constexpr uint64_t kApicEnabled = uint64_t{1} << 11;
constexpr uint64_t kApicBsp = uint64_t{1} << 8;
constexpr size_t kApicLvtLint0 = 0x350;
constexpr size_t kApicLvtLint1 = 0x360;
constexpr uint32_t kLvtDeliveryModeMask = 0x700;
constexpr uint32_t kLvtMasked = uint32_t{1} << 16;
constexpr uint32_t kDeliveryExtInt = 0x700;
constexpr uint32_t kDeliveryNmi = 0x400;
// A TSS descriptor's type: 9 available, 11 busy.
constexpr uint8_t kTssBusyBit = 0x2;

// A PC vCPU's CPUID: its APIC id in leaf 1 (EBX 31:24) and in the x2APIC
// topology leaves (EDX), the hypervisor bit (ECX 31 of leaf 1), without
// which Linux does not look for KVM's leaves at 0x40000000 (kvmclock), and
// the TSC-deadline timer (ECX 24) where the in-kernel LAPIC has it. Without
// that bit Linux calibrates the LAPIC timer against the PIT's jiffies; on a
// loaded host the two disagree, Linux disables the LAPIC timer ("APIC timer
// disabled due to verification failure") and runs on the PIT's broadcast
// ticks, a boot seen to stall for good under nested TCG (linux.*_nested).
void name_pc_vcpu(CpuidList<kMaxCpuidEntries>& cpuid, uint32_t index, bool tsc_deadline_timer) {
  constexpr uint32_t kHypervisor = uint32_t{1} << 31;
  constexpr uint32_t kTscDeadline = uint32_t{1} << 24;
  for (uint32_t i = 0; i < cpuid.nent; ++i) {
    kvm_cpuid_entry2& entry = cpuid.entries[i];
    if (entry.function == 1) {
      entry.ebx = (entry.ebx & 0x00ffffff) | (index << 24);
      entry.ecx |= kHypervisor | (tsc_deadline_timer ? kTscDeadline : 0);
    } else if (entry.function == 0xb || entry.function == 0x1f) {
      entry.edx = index;
    }
  }
}

}  // namespace

KvmVcpuFd::KvmVcpuFd(KvmVcpuFd&& other) noexcept
    : fd_(std::move(other.fd_)),
      run_(std::exchange(other.run_, nullptr)),
      run_bytes_(std::exchange(other.run_bytes_, 0)) {}

KvmVcpuFd& KvmVcpuFd::operator=(KvmVcpuFd&& other) noexcept {
  if (this != &other) {
    if (run_ != nullptr) munmap(run_, run_bytes_);
    fd_ = std::move(other.fd_);
    run_ = std::exchange(other.run_, nullptr);
    run_bytes_ = std::exchange(other.run_bytes_, 0);
  }
  return *this;
}

KvmVcpuFd::~KvmVcpuFd() {
  if (run_ != nullptr) munmap(run_, run_bytes_);
}

Result<KvmCpuState> KvmVcpuFd::get_state() const {
  KvmCpuState state;
  if (ioctl(fd(), KVM_GET_REGS, &state.regs) != 0) return system_error("KVM_GET_REGS");
  if (ioctl(fd(), KVM_GET_SREGS, &state.sregs) != 0) return system_error("KVM_GET_SREGS");
  if (ioctl(fd(), KVM_GET_FPU, &state.fpu) != 0) return system_error("KVM_GET_FPU");
  MsrList<kSavedMsrs.size()> msrs;
  for (size_t i = 0; i < kSavedMsrs.size(); ++i)
    msrs.entries[i].index = kSavedMsrs[i];
  const int read = ioctl(fd(), kGetMsrs, &msrs);
  if (read < 0) return system_error("KVM_GET_MSRS");
  // KVM stops at the first MSR it does not know; the rest stay unsaved.
  state.msr_count = static_cast<uint32_t>(read);
  for (uint32_t i = 0; i < state.msr_count; ++i)
    state.msrs[i] = {msrs.entries[i].index, msrs.entries[i].data};
  kvm_device_attr attr{};
  uint64_t offset = 0;
  attr.group = KVM_VCPU_TSC_CTRL;
  attr.attr = KVM_VCPU_TSC_OFFSET;
  attr.addr = reinterpret_cast<uint64_t>(&offset);
  if (ioctl(fd(), KVM_GET_DEVICE_ATTR, &attr) == 0) state.tsc_offset = offset;
  return state;
}

Result<void> KvmVcpuFd::set_state(const KvmCpuState& state) const {
  if (ioctl(fd(), KVM_SET_SREGS, &state.sregs) != 0) return system_error("KVM_SET_SREGS");
  if (ioctl(fd(), KVM_SET_REGS, &state.regs) != 0) return system_error("KVM_SET_REGS");
  if (ioctl(fd(), KVM_SET_FPU, &state.fpu) != 0) return system_error("KVM_SET_FPU");
  if (state.msr_count > 0) {
    MsrList<kSavedMsrs.size()> msrs;
    msrs.nmsrs = state.msr_count;
    for (uint32_t i = 0; i < state.msr_count; ++i) {
      msrs.entries[i].index = state.msrs[i].index;
      msrs.entries[i].data = state.msrs[i].value;
    }
    if (ioctl(fd(), kSetMsrs, &msrs) != static_cast<int>(state.msr_count)) {
      return system_error("KVM_SET_MSRS");
    }
  }
  if (state.tsc_offset) {
    uint64_t offset = *state.tsc_offset;
    kvm_device_attr attr{};
    attr.group = KVM_VCPU_TSC_CTRL;
    attr.attr = KVM_VCPU_TSC_OFFSET;
    attr.addr = reinterpret_cast<uint64_t>(&offset);
    (void)ioctl(fd(), KVM_SET_DEVICE_ATTR, &attr);  // best effort: only the clock's origin
  }
  return Ok{};
}

Result<std::unique_ptr<KvmMachine>> KvmMachine::create(KvmHost& host, AddressSpace& space,
                                                       uint32_t vcpu_count, Platform platform,
                                                       MemoryErrorHandler on_memory_error) {
  if (platform == Platform::kPc && host.pvm()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a Linux guest needs a hardware-virtualized /dev/kvm (Intel VT-x or AMD "
                      "SVM); this one is PVM's (/sys/module/kvm_pvm), which runs natively only "
                      "kernels built as PVM guests");
  }
  UniqueFd vm(ioctl(host.fd(), KVM_CREATE_VM, 0));
  if (!vm.valid()) return system_error("KVM_CREATE_VM");
  if (space.ram_bytes() <= kTssAddress) (void)ioctl(vm.get(), KVM_SET_TSS_ADDR, kTssAddress);
  Result<std::unique_ptr<GuestRam>> ram =
      GuestRam::create(space, space.memory().pool().fd(), mapping_budget());
  if (!ram) return ram.error();
  std::unique_ptr<KvmMachine> machine(
      new KvmMachine(host, std::move(vm), std::move(*ram), platform));
  if (platform == Platform::kPc) {
    if (Result<void> chips = machine->add_pc_chips(); !chips) return chips.error();
  }
  {
    std::lock_guard lock(machine->ram_->serve_mutex());
    if (Result<void> slot =
            machine->set_memslot(kRamSlot, 0, machine->ram_->host_base_locked(), space.ram_bytes());
        !slot) {
      return slot.error();
    }
  }
  if (host.pvm()) {
    if (Result<void> vif = machine->add_vif_pages(vcpu_count); !vif) return vif.error();
  }
  GuestRam& served = *machine->ram_;
  machine->watch_ = host.faults().watch(
      served.uffd(), [&served, report = std::move(on_memory_error)](const uffd_msg& message) {
        Result<void> done = served.serve(message);
        // The VM ends on an error; its later faults are still served (on
        // memory of their own) until its vCPUs have left KVM_RUN.
        if (!done) report(done.error(), static_cast<pid_t>(message.arg.pagefault.feat.ptid));
        return true;
      });
  return machine;
}

KvmMachine::KvmMachine(KvmHost& host, UniqueFd vm, std::unique_ptr<GuestRam> ram, Platform platform)
    : host_(host), vm_(std::move(vm)), ram_(std::move(ram)), platform_(platform) {}

KvmMachine::~KvmMachine() {
  watch_.reset();  // no handler runs any more
}

Result<void> KvmMachine::set_memslot(uint32_t slot, uint64_t guest_base, uint64_t host_base,
                                     uint64_t bytes) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.guest_phys_addr = guest_base;
  region.memory_size = bytes;
  region.userspace_addr = host_base;
  if (ioctl(vm_.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    return system_error("KVM_SET_USER_MEMORY_REGION");
  }
  return Ok{};
}

Result<void> KvmMachine::restart_memory_locked() {
  Result<GuestRam::Reservation> fresh = ram_->make_reservation();
  if (!fresh) return fresh.error();
  const uint64_t fresh_base = reinterpret_cast<uint64_t>(fresh->ram.base());
  // A memslot's host address cannot change in place: delete it, add it anew.
  if (Result<void> removed = set_memslot(kRamSlot, 0, 0, 0); !removed) return removed;
  if (Result<void> added = set_memslot(kRamSlot, 0, fresh_base, ram_->ram_bytes()); !added) {
    return added;
  }
  auto old = std::make_shared<GuestRam::Reservation>(ram_->restart_locked(std::move(*fresh)));
  host_.faults().defer([old]() mutable { old.reset(); });
  return Ok{};
}

Result<KvmVcpuFd> KvmMachine::create_vcpu(uint32_t index, const KvmCpuState& state) {
  UniqueFd fd(ioctl(vm_.get(), KVM_CREATE_VCPU, index));
  if (!fd.valid()) return system_error(fmt::format("KVM_CREATE_VCPU {}", index));
  void* run =
      mmap(nullptr, host_.vcpu_mmap_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (run == MAP_FAILED) return system_error("mmap of a vCPU's run area");
  KvmVcpuFd vcpu(std::move(fd), static_cast<kvm_run*>(run), host_.vcpu_mmap_size());
  if (platform_ == Platform::kPc) {
    auto cpuid = std::make_unique<CpuidList<kMaxCpuidEntries>>(host_.cpuid());
    name_pc_vcpu(*cpuid, index, host_.tsc_deadline_timer());
    if (ioctl(vcpu.fd(), kSetCpuid2, cpuid.get()) != 0) return system_error("KVM_SET_CPUID2");
    if (state.pc) {  // a clone's: everything as its original had it
      KvmCpuState clone_state = state;
      // KVM reports an AMD vCPU's TR as busy (type 11) whatever the VMCB
      // holds (svm_get_segment), and the VMCB of a running Linux holds the
      // available type (9) that LTR left there. Written back as 11, QEMU's
      // SVM emulation (TCG, where the nested tests run) refuses every `out`
      // of a process whose ports come from the TSS bitmap with a #GP; AMD's
      // own VMRUN ignores the bit. Intel's VM entry requires 11: left alone.
      if (host_.amd())
        clone_state.sregs.tr.type = static_cast<uint8_t>(clone_state.sregs.tr.type & ~kTssBusyBit);
      if (Result<void> set = vcpu.set_state(clone_state); !set) return set.error();
      if (Result<void> set = set_pc_cpu_state(vcpu.fd(), *state.pc); !set) return set.error();
      return vcpu;
    }
    KvmCpuState pc_state = state;
    pc_state.sregs.idt = {};
    pc_state.sregs.apic_base = kApicBase | kApicEnabled | (index == 0 ? kApicBsp : 0);
    if (Result<void> set = vcpu.set_state(pc_state); !set) return set.error();
    if (Result<void> wired = set_virtual_wire(vcpu); !wired) return wired.error();
    return vcpu;
  }
  if (ioctl(vcpu.fd(), kSetCpuid2, &host_.cpuid()) != 0) return system_error("KVM_SET_CPUID2");
  if (Result<void> set = vcpu.set_state(state); !set) return set.error();
  if (!vif_pages_.base()) return vcpu;
  if (Result<void> vif = register_vif_page(vcpu, index); !vif) return vif.error();
  return vcpu;
}

Result<void> KvmMachine::add_pc_chips() {
  if (ioctl(vm_.get(), KVM_CREATE_IRQCHIP, 0) != 0) return system_error("KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;  // port 0x61 answers, with no sound
  if (ioctl(vm_.get(), KVM_CREATE_PIT2, &pit) != 0) return system_error("KVM_CREATE_PIT2");
  return Ok{};
}

Result<void> KvmMachine::set_virtual_wire(const KvmVcpuFd& vcpu) const {
  kvm_lapic_state lapic{};
  if (ioctl(vcpu.fd(), KVM_GET_LAPIC, &lapic) != 0) return system_error("KVM_GET_LAPIC");
  auto set_lvt = [&lapic](size_t offset, uint32_t delivery_mode) {
    uint32_t lvt = 0;
    std::memcpy(&lvt, &lapic.regs[offset], sizeof(lvt));
    lvt = (lvt & ~kLvtDeliveryModeMask & ~kLvtMasked) | delivery_mode;
    std::memcpy(&lapic.regs[offset], &lvt, sizeof(lvt));
  };
  set_lvt(kApicLvtLint0, kDeliveryExtInt);
  set_lvt(kApicLvtLint1, kDeliveryNmi);
  if (ioctl(vcpu.fd(), KVM_SET_LAPIC, &lapic) != 0) return system_error("KVM_SET_LAPIC");
  return Ok{};
}

Result<PcCpuState> KvmMachine::pc_cpu_state(const KvmVcpuFd& vcpu) const {
  return get_pc_cpu_state(vcpu.fd(), host_.msr_indices());
}

Result<PcChipState> KvmMachine::pc_chips() const {
  return get_pc_chips(vm_.get());
}

Result<void> KvmMachine::set_pc_chips(const PcChipState& state) {
  return kvm::set_pc_chips(vm_.get(), state);
}

Result<void> KvmMachine::set_irq_line(uint32_t gsi, bool level) {
  kvm_irq_level line{};
  line.irq = gsi;
  line.level = level ? 1 : 0;
  if (ioctl(vm_.get(), KVM_IRQ_LINE, &line) != 0) {
    return system_error(fmt::format("KVM_IRQ_LINE {}", gsi));
  }
  return Ok{};
}

Result<void> KvmMachine::add_vif_pages(uint32_t vcpu_count) {
  const uint64_t bytes = uint64_t{std::max<uint32_t>(vcpu_count, 1)} * kVifPageBytes;
  Result<HostMapping> pages = HostMapping::anonymous(bytes);
  if (!pages) return pages.error();
  vif_pages_ = std::move(*pages);
  return set_memslot(kVifSlot, kVifBase, reinterpret_cast<uint64_t>(vif_pages_.base()), bytes);
}

Result<void> KvmMachine::register_vif_page(const KvmVcpuFd& vcpu, uint32_t index) const {
  if (uint64_t{index + 1} * kVifPageBytes > vif_pages_.bytes()) {
    return make_error(ErrorCode::kInternal, fmt::format("vCPU {} has no VIF page (the VM has {})",
                                                        index, vif_pages_.bytes() / kVifPageBytes));
  }
  MsrList<1> msr;
  msr.entries[0].index = kVifMsr;
  msr.entries[0].data = (kVifBase + uint64_t{index} * kVifPageBytes) | kVifEnable;
  // 1: registered. PVM's module is detected by its sysfs name only, so a
  // kernel that does not take the MSR is possible: the vCPU then runs
  // emulated, slowly but correctly; say so once.
  const int set = ioctl(vcpu.fd(), kSetMsrs, &msr);
  if (set < 0) return system_error("KVM_SET_MSRS of the PVM VIF page");
  if (set == 0) {
    static std::once_flag warned;
    std::call_once(warned, [] {
      spdlog::warn(
          "kvm: /sys/module/kvm_pvm exists but KVM did not take the VIF page MSR {:#x}: "
          "guests run emulated (about 1 us per instruction)",
          kVifMsr);
    });
  }
  return Ok{};
}

}  // namespace vmfork::kvm
