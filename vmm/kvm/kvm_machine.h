// The KVM side of one kvm-engine VM: the VM fd, its memslot over the
// realized guest RAM, and the userfaultfd watch on the fault service.
// vCPU fds are created from it (KvmVcpuFd).
#pragma once

#include <linux/kvm.h>
#include <sys/types.h>

#include <functional>
#include <memory>

#include "base/result.h"
#include "guestmm/address_space.h"
#include "guestmm/host_mapping.h"
#include "vmm/boot/platform.h"
#include "vmm/kvm/guest_ram.h"
#include "vmm/kvm/kvm_cpu_state.h"
#include "vmm/kvm/kvm_host.h"
#include "vmm/kvm/unique_fd.h"

namespace vmfork::kvm {

// A vCPU's fd and its shared run area.
class KvmVcpuFd {
 public:
  KvmVcpuFd() = default;
  KvmVcpuFd(UniqueFd fd, kvm_run* run, size_t run_bytes)
      : fd_(std::move(fd)), run_(run), run_bytes_(run_bytes) {}
  KvmVcpuFd(KvmVcpuFd&& other) noexcept;
  KvmVcpuFd& operator=(KvmVcpuFd&& other) noexcept;
  KvmVcpuFd(const KvmVcpuFd&) = delete;
  KvmVcpuFd& operator=(const KvmVcpuFd&) = delete;
  ~KvmVcpuFd();

  int fd() const { return fd_.get(); }
  kvm_run* run() const { return run_; }

  Result<KvmCpuState> get_state() const;
  Result<void> set_state(const KvmCpuState& state) const;

 private:
  UniqueFd fd_;
  kvm_run* run_ = nullptr;
  size_t run_bytes_ = 0;
};

class KvmMachine {
 public:
  // `on_memory_error` runs on a fault-service thread when a fault of this
  // VM cannot be served (the VM must end), with the faulting thread's id.
  using MemoryErrorHandler = std::function<void(const Error&, pid_t)>;
  // `vcpu_count`: how many vCPUs will be created (each needs a VIF page
  // on PVM hosts, kvm/pvm.h). Platform::kPc adds KVM's in-kernel interrupt
  // controllers (PIC, IOAPIC, local APICs) and PIT, and refuses PVM hosts.
  static Result<std::unique_ptr<KvmMachine>> create(KvmHost& host, AddressSpace& space,
                                                    uint32_t vcpu_count, Platform platform,
                                                    MemoryErrorHandler on_memory_error);
  ~KvmMachine();
  KvmMachine(const KvmMachine&) = delete;
  KvmMachine& operator=(const KvmMachine&) = delete;

  // vCPU `index`, with the host's CPUID, starting from `state`. On a PC:
  // the CPUID names the vCPU's APIC id and a hypervisor (KVM's clock and
  // paravirtual leaves are found through it), the guest's own IDT (none
  // yet) replaces the monitor's reporters, and the local APIC starts in
  // virtual-wire mode as a BIOS leaves it.
  Result<KvmVcpuFd> create_vcpu(uint32_t index, const KvmCpuState& state);

  Platform platform() const { return platform_; }
  // Platform::kPc: what a clone needs beyond the registers, of a vCPU (not
  // in KVM_RUN) and of the VM (every vCPU paused); set_pc_chips before the
  // clone's vCPUs are made.
  Result<PcCpuState> pc_cpu_state(const KvmVcpuFd& vcpu) const;
  Result<PcChipState> pc_chips() const;
  Result<void> set_pc_chips(const PcChipState& state);
  // Platform::kPc: drives interrupt line `gsi` (KVM_IRQ_LINE).
  Result<void> set_irq_line(uint32_t gsi, bool level);

  // Held while a snapshot of the VM's memory is taken (no fault in flight).
  std::mutex& serve_mutex() { return ram_->serve_mutex(); }
  // After a snapshot (caller holds serve_mutex(), every vCPU paused): moves
  // the memslot to a fresh, lazily realized reservation; the old one is
  // unmapped later on the fault service, off the fork's critical path.
  Result<void> restart_memory_locked();

  // PVM only (null elsewhere): kvm/halt_watch.h.
  HaltWatch* halt_watch() { return host_.halt_watch(); }

  const GuestRam& ram() const { return *ram_; }
  GuestRam& ram() { return *ram_; }

 private:
  KvmMachine(KvmHost& host, UniqueFd vm, std::unique_ptr<GuestRam> ram, Platform platform);
  // Platform::kPc: the in-kernel interrupt controllers and PIT.
  Result<void> add_pc_chips();
  // Platform::kPc: LINT0 ExtINT, LINT1 NMI.
  Result<void> set_virtual_wire(const KvmVcpuFd& vcpu) const;
  Result<void> set_memslot(uint32_t slot, uint64_t guest_base, uint64_t host_base, uint64_t bytes);
  // PVM: the VM's private VIF pages, one per vCPU, in a memslot of their own.
  Result<void> add_vif_pages(uint32_t vcpu_count);
  // PVM: registers vCPU `index`'s VIF page.
  Result<void> register_vif_page(const KvmVcpuFd& vcpu, uint32_t index) const;

  KvmHost& host_;
  UniqueFd vm_;
  std::unique_ptr<GuestRam> ram_;
  Platform platform_;
  HostMapping vif_pages_;  // PVM only: kvm/pvm.h
  std::unique_ptr<FaultServer::Registration> watch_;
};

}  // namespace vmfork::kvm
