// An engine (DESIGN section 2), in the spirit of cloud-hypervisor's
// `hypervisor` crate: one per monitor and engine, shared by its VMs. It
// gives a booting vCPU its start state and makes each VM's machine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "base/result.h"
#include "vmm/boot/vcpu_boot_state.h"
#include "vmm/hypervisor/cpu_state.h"
#include "vmm/hypervisor/engine.h"
#include "vmm/hypervisor/machine.h"
#include "vmm/hypervisor/vm_host.h"

namespace vmfork {

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual Engine engine() const = 0;
  // The DESIGN section 8 start state as this engine starts it.
  virtual CpuState start_state(const VcpuBootState& boot) const = 0;
  // The engine's side of `vm`, which will have `vcpu_count` vCPUs.
  virtual Result<std::unique_ptr<Machine>> create_machine(VmHost& vm, uint32_t vcpu_count) = 0;
};

// Opens an engine; the monitor calls it once per engine it needs
// (vmm/engines/open_hypervisor.h is the production one).
using OpenHypervisor = std::function<Result<std::unique_ptr<Hypervisor>>(Engine)>;

}  // namespace vmfork
