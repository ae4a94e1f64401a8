// A vCPU of a VM, whatever engine runs it: a thread that executes guest
// code until the VM pauses (it parks at an instruction boundary) or ends.
// The VM drives the pause and the fork through this interface; each engine's
// machine (machine.h) creates them.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "vmm/hypervisor/cpu_state.h"
#include "vmm/hypervisor/pause_member.h"

namespace vmfork {

// What a snapshot keeps of a vCPU.
struct VcpuSnapshot {
  CpuState cpu;
  bool halted = false;
};

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
