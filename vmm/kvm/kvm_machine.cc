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

Error system_error(const std::string& what) {
  return make_error(ErrorCode::kSystem, fmt::format("{}: {}", what, std::strerror(errno)));
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
                                                       uint32_t vcpu_count,
                                                       MemoryErrorHandler on_memory_error) {
  UniqueFd vm(ioctl(host.fd(), KVM_CREATE_VM, 0));
  if (!vm.valid()) return system_error("KVM_CREATE_VM");
  if (space.ram_bytes() <= kTssAddress) (void)ioctl(vm.get(), KVM_SET_TSS_ADDR, kTssAddress);
  Result<std::unique_ptr<GuestRam>> ram =
      GuestRam::create(space, space.memory().pool().fd(), mapping_budget());
  if (!ram) return ram.error();
  std::unique_ptr<KvmMachine> machine(new KvmMachine(host, std::move(vm), std::move(*ram)));
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

KvmMachine::KvmMachine(KvmHost& host, UniqueFd vm, std::unique_ptr<GuestRam> ram)
    : host_(host), vm_(std::move(vm)), ram_(std::move(ram)) {}

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
  if (ioctl(vcpu.fd(), kSetCpuid2, &host_.cpuid()) != 0) return system_error("KVM_SET_CPUID2");
  if (Result<void> set = vcpu.set_state(state); !set) return set.error();
  if (!vif_pages_.base()) return vcpu;
  if (Result<void> vif = register_vif_page(vcpu, index); !vif) return vif.error();
  return vcpu;
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
