// A vCPU of the soft engine: a thread running the interpreter over the
// vCPU's own translation cache and the project's EPT. Guest memory faults
// are served on this thread by the COW protocol (VcpuMemory); shootdowns
// are serviced once per basic block (check()). A locked access the host
// cannot make atomic runs in an exclusive section (VmHost::begin_exclusive).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "base/parked_threads.h"
#include "guestmm/vcpu_memory.h"
#include "vmm/hypervisor/vcpu.h"
#include "vmm/hypervisor/vm_host.h"
#include "vmm/soft/cpu_environment.h"
#include "vmm/soft/cpu_state.h"
#include "vmm/soft/interpreter.h"

namespace vmfork {

class SoftVcpu final : public Vcpu, public soft::CpuEnvironment {
 public:
  // Joins `vm`'s address space parked; start() runs it.
  static Result<std::unique_ptr<SoftVcpu>> create(VmHost& vm, uint32_t index,
                                                  const VcpuSnapshot& from);
  ~SoftVcpu() override;
  SoftVcpu(const SoftVcpu&) = delete;
  SoftVcpu& operator=(const SoftVcpu&) = delete;

  // Vcpu. The state is read by the forking vCPU while this one is parked
  // (the VM orders it).
  uint32_t index() const override { return index_; }
  void start() override;
  void join() override;
  void kick() override {}  // check() looks at the VM's flags once per basic block
  Result<VcpuSnapshot> snapshot() const override;
  Result<VcpuSnapshot> snapshot_past_fork() override;
  Result<void> set_fork_result(uint64_t rax) override;
  void parking() override { memory_->park(); }
  void resuming() override { memory_->resume(); }

  // soft::CpuEnvironment
  Result<std::byte*> translate(uint64_t gpa, Access access) override;
  Result<soft::PortAction> port_out(uint16_t port, uint8_t size, uint32_t value) override;
  Result<uint32_t> port_in(uint16_t port, uint8_t size) override;
  bool check() override;
  soft::Exclusive begin_exclusive() override;
  void end_exclusive() override;
  uint64_t flush_generation() const override { return memory_->tlb().flushes(); }

 private:
  SoftVcpu(VmHost& vm, uint32_t index, std::unique_ptr<VcpuMemory> memory,
           const VcpuSnapshot& from);
  void run();
  // The engine-neutral state with `cpu` in it.
  VcpuSnapshot snapshot_of(const soft::CpuState& cpu) const;

  VmHost& vm_;
  const uint32_t index_;
  std::unique_ptr<VcpuMemory> memory_;
  // What the interpreter does not hold (segments, control registers, MSRs,
  // another engine's blob): carried unchanged from the state it started
  // from, since the interpreter never changes them.
  const CpuState outside_interpreter_;
  soft::CpuState state_;  // this vCPU's thread, or anyone while it is parked
  bool halted_;
  soft::Interpreter interpreter_;
  // Set when the vCPU resumes from a pause: the next check() that would
  // stop for a new pause does not, so it runs at least a basic block between
  // two parkings (VcpuPause's starvation freedom).
  bool resumed_ = false;
  std::optional<uint32_t> fork_request_;  // set by `out` to the fork port, taken by run()
  uint64_t fork_rip_ = 0;                 // the RIP of that `out`
  ParkedThreads::Job thread_;             // on the process's parked threads
};

}  // namespace vmfork
