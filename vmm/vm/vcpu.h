// A vCPU of a VM, whatever engine runs it: a thread that executes guest
// code until the VM pauses (it parks at an instruction boundary) or ends.
// Vm drives the pause and the fork through this interface; the engines'
// vCPUs (SoftVcpu, KvmVcpu) implement it.
#pragma once

#include <cstdint>
#include <variant>

#include "ept/result.h"
#include "vmm/kvm/kvm_cpu_state.h"
#include "vmm/soft/cpu_state.h"
#include "vmm/vm/vcpu_pause.h"

namespace vmfork {

// What a snapshot keeps of a vCPU: its engine's architectural state.
struct VcpuSnapshot {
  std::variant<soft::CpuState, kvm::KvmCpuState> cpu;
  bool halted = false;
};

// Sets RAX in a snapshot (the fork's result in each clone).
void set_rax(VcpuSnapshot& snapshot, uint64_t rax);

// parking() and resuming() (PauseMember): around a pause, on the vCPU's own
// thread, it stops or resumes taking part in its address space's shootdowns
// and reclamation.
class Vcpu : public PauseMember {
 public:
  virtual uint32_t index() const = 0;
  // Starts the thread (a halted vCPU has none).
  virtual void start() = 0;
  virtual void join() = 0;
  // Makes the vCPU reach an instruction boundary and look at the VM's
  // pause and end flags soon (the soft engine looks once per basic block
  // anyway; kvm leaves KVM_RUN).
  virtual void kick() = 0;

  // The state a clone's copy of this parked vCPU starts from. A fork request
  // of its own that has not been served yet is not part of it: the copy
  // stands at its `out`, which runs again in the clone.
  virtual Result<VcpuSnapshot> snapshot() const = 0;
  // On the forking vCPU's own thread, its request being served: the state
  // after its `out` (the clones set RAX in it).
  virtual Result<VcpuSnapshot> snapshot_past_fork() = 0;
  // The forking vCPU's RAX in the original after the fork: 0 or -1.
  virtual Result<void> set_fork_result(uint64_t rax) = 0;
};

}  // namespace vmfork
