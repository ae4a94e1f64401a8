// A vCPU of the kvm engine: a thread in KVM_RUN. Port I/O exits go to the
// VM's devices; guest memory faults never reach this thread (the kernel
// blocks it and the fault service resolves them, kvm/guest_ram.h). A pause
// kicks it out of KVM_RUN with a signal whose handler sets immediate_exit;
// before it parks, a pending port I/O is completed (KVM_RUN with
// immediate_exit), so its state is at an instruction boundary.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/parked_threads.h"
#include "vmm/hypervisor/vcpu.h"
#include "vmm/hypervisor/vm_host.h"
#include "vmm/kvm/kvm_machine.h"
#include "vmm/kvm/kvm_vcpu_directory.h"

namespace vmfork {

class KvmVcpu final : public Vcpu {
 public:
  // Joins `directory` (the VM's) until destroyed.
  static Result<std::unique_ptr<KvmVcpu>> create(VmHost& vm, kvm::KvmMachine& machine,
                                                 KvmVcpuDirectory& directory, uint32_t index,
                                                 const VcpuSnapshot& from);
  ~KvmVcpu() override;
  KvmVcpu(const KvmVcpu&) = delete;
  KvmVcpu& operator=(const KvmVcpu&) = delete;

  // Vcpu
  uint32_t index() const override { return index_; }
  void start() override;
  void join() override;
  void kick() override;
  Result<VcpuSnapshot> snapshot() const override;
  Result<VcpuSnapshot> snapshot_past_fork() override;
  Result<void> set_fork_result(uint64_t rax) override;
  void parking() override;
  void resuming() override {}

  // The thread id the kernel reports in this vCPU's userfaultfd messages
  // (0 before it runs).
  pid_t thread_id() const { return thread_id_.load(std::memory_order_acquire); }
  // A fault of this vCPU could not be served: it reports `cause` with its
  // RIP and the VM ends.
  void fail_memory(const std::string& cause);

 private:
  KvmVcpu(VmHost& vm, kvm::KvmMachine& machine, KvmVcpuDirectory& directory, uint32_t index,
          kvm::KvmVcpuFd fd, bool halted, kvm::HaltWatch* halt_watch,
          std::optional<kvm::VcpuStat> emulations);
  void run();
  void run_loop();
  // One KVM_RUN; false when the thread must leave its loop.
  bool run_once();
  bool handle_io();
  // PVM, kicked by the halt watch (kvm/halt_watch.h): whether the vCPU
  // stands at a hlt or right after one; at one, it is moved past it.
  bool stopped_at_hlt();
  // KVM_EXIT_MMIO: RAM's (kvm::GuestRam::complete_mmio) or a fault.
  bool handle_mmio();
  // Runs the completion of a port I/O exit KVM still owes (RIP moves past
  // the instruction) without entering the guest.
  void complete_pending_io();
  // Retires the `out` of a fork request just made; returns its address.
  Result<uint64_t> retire_fork_out();
  // The vCPU's state, with no fork request's `out` put back.
  Result<VcpuSnapshot> state_as_is() const;
  uint64_t rip() const;
  // The error for an exception the monitor's reporter caught (the vCPU
  // stands in its stub; the frame is at RSP).
  std::string describe_exception() const;
  void fail(const std::string& cause);

  VmHost& vm_;
  const kvm::KvmMachine& machine_;  // outlives its vCPUs
  kvm::GuestRam& ram_;              // the machine's
  KvmVcpuDirectory& directory_;     // the VM's; outlives its vCPUs
  const uint32_t index_;
  kvm::KvmVcpuFd fd_;
  bool halted_;                           // this vCPU's thread, or anyone while it is parked
  bool io_pending_ = false;               // this vCPU's thread, or anyone while it is parked
  int emulation_failures_ = 0;            // this vCPU's thread: in a row
  std::optional<uint32_t> fork_request_;  // set by `out` to the fork port, taken by run()
  uint64_t fork_out_rip_ = 0;             // that `out`'s address, while fork_request_ is set
  // PVM: the vCPU ran a hlt that KVM_RUN did not report (kvm/halt_watch.h).
  kvm::HaltWatch* const halt_watch_;               // null where hlt exits
  const std::optional<kvm::VcpuStat> emulations_;  // watched while run() loops
  std::atomic<bool> halt_seen_{false};             // set by the watch, taken by run_loop()
  std::atomic<uint64_t> exits_{0};                 // KVM_RUN returns: the watch's second input
  std::atomic<pid_t> thread_id_{0};
  std::mutex fault_mutex_;
  std::optional<std::string> memory_fault_;  // guarded by fault_mutex_
  std::mutex kick_mutex_;
  std::optional<pthread_t> running_thread_;  // guarded by kick_mutex_: set while run() loops
  ParkedThreads::Job thread_;
};

}  // namespace vmfork
