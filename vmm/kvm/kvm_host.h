// The host's KVM (/dev/kvm), opened once per monitor: API checks, the CPUID
// every vCPU gets, the size of a vCPU's shared run area, the kick signal,
// and the fault service every kvm VM's userfaultfd is served on.
#pragma once

#include <linux/kvm.h>

#include <memory>
#include <vector>

#include "base/result.h"
#include "vmm/kvm/fault_server.h"
#include "vmm/kvm/halt_watch.h"
#include "vmm/kvm/kvm_abi.h"
#include "vmm/kvm/unique_fd.h"

namespace vmfork::kvm {

// The signal that kicks a vCPU thread out of KVM_RUN (its handler sets the
// thread's immediate_exit, so a kick that lands just before KVM_RUN is not
// lost).
inline constexpr int kKickSignal = SIGUSR1;

class KvmHost {
 public:
  // Fails with a message naming what is missing: /dev/kvm, a capability, or
  // userfaultfd write-protect support for shared memory.
  static Result<std::unique_ptr<KvmHost>> open();
  // True when /dev/kvm can be opened read-write (what --engine auto asks).
  static bool available();

  int fd() const { return kvm_.get(); }
  size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
  // KVM_GET_SUPPORTED_CPUID, ready for KVM_SET_CPUID2.
  const CpuidList<kMaxCpuidEntries>& cpuid() const { return *cpuid_; }
  FaultServer& faults() { return faults_; }
  // KVM_GET_MSR_INDEX_LIST: the MSRs a PC guest's fork carries.
  const std::vector<uint32_t>& msr_indices() const { return msr_indices_; }
  // /dev/kvm is PVM's (kvm/pvm.h): each VM gets VIF pages, each vCPU
  // registers one, so guests run natively instead of emulated.
  bool pvm() const { return pvm_; }
  // The CPU is AMD's (CPUID leaf 0's vendor): its vCPUs run on SVM.
  bool amd() const;
  // KVM_CAP_TSC_DEADLINE_TIMER: the in-kernel LAPIC has the TSC-deadline
  // timer mode, which KVM_GET_SUPPORTED_CPUID never reports (it needs the
  // irqchip); the PC platform's vCPUs get its CPUID bit.
  bool tsc_deadline_timer() const { return tsc_deadline_timer_; }
  // PVM only (null elsewhere): how vCPUs that ran hlt are found.
  HaltWatch* halt_watch() { return halt_watch_.get(); }

 private:
  KvmHost(UniqueFd kvm, size_t vcpu_mmap_size, std::unique_ptr<CpuidList<kMaxCpuidEntries>> cpuid,
          std::vector<uint32_t> msr_indices, bool pvm, bool tsc_deadline_timer);

  UniqueFd kvm_;
  size_t vcpu_mmap_size_;
  std::unique_ptr<CpuidList<kMaxCpuidEntries>> cpuid_;
  std::vector<uint32_t> msr_indices_;
  bool pvm_;
  bool tsc_deadline_timer_;
  std::unique_ptr<HaltWatch> halt_watch_;  // PVM only
  FaultServer faults_;
};

// Points the calling thread's kick handler at its vCPU's run area.
void set_thread_run_area(kvm_run* run);

}  // namespace vmfork::kvm
