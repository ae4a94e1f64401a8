// The holder of a VM's pause taken from outside (a host thread: the control
// API, a snapshot timed by the CLI). It runs no guest code, so it has no
// shootdowns or reclamation to leave and rejoin.
#pragma once

#include "vmm/hypervisor/pause_member.h"

namespace vmfork {

class HostPauser final : public PauseMember {
 public:
  void parking() override {}
  void resuming() override {}
};

}  // namespace vmfork
