// What a VM's pause (vmm/vm/vcpu_pause.h) needs of a vCPU: around a pause,
// on the vCPU's own thread, it stops or resumes taking part in its address
// space's shootdowns and reclamation.
#pragma once

namespace vmfork {

class PauseMember {
 public:
  virtual ~PauseMember() = default;
  virtual void parking() = 0;
  virtual void resuming() = 0;
};

}  // namespace vmfork
