// An engine's side of one VM (cloud-hypervisor's `Vm`): made by the engine's
// Hypervisor for a VM, it makes the VM's vCPUs and takes part in snapshots
// of the VM's memory. It outlives the vCPUs it made.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/hypervisor/vcpu.h"

namespace vmfork {

// One figure the engine counts of a VM ("host_mappings": 3).
struct EngineCounter {
  std::string name;
  uint64_t value = 0;
};

class Machine {
 public:
  virtual ~Machine() = default;

  // vCPU `index`, starting from `from`, parked until Vcpu::start(). `from`
  // may have come from another engine (its blob is then ignored).
  virtual Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t index, const VcpuSnapshot& from) = 0;

  // Held while a snapshot of the VM's memory is taken: no fault of the VM is
  // being served meanwhile (DESIGN section 7). Empty where faults are served
  // on the vCPUs' own threads, which are paused.
  virtual std::unique_lock<std::mutex> hold_faults() = 0;
  // After the snapshot, hold_faults() still held, every vCPU paused: what
  // the engine mapped of the VM's memory is stale (its root lost W) and
  // starts over. An error ends the VM.
  virtual Result<void> restart_memory_locked() = 0;

  // Platform::kPc: drives the interrupt line `gsi` of the VM's interrupt
  // controllers (a device's level). Engines without them refuse.
  virtual Result<void> set_irq_line(uint32_t gsi, bool level) {
    (void)gsi;
    (void)level;
    return make_error(ErrorCode::kWrongState, "this engine has no interrupt controllers");
  }

  // Platform::kPc: the state of the VM's interrupt controllers, timer and
  // clock (every vCPU paused), for a clone; empty where the engine keeps
  // none. set_platform_state() puts one on a new machine, before its vCPUs
  // are made.
  virtual Result<EngineBlob> platform_state() const { return EngineBlob{}; }
  virtual Result<void> set_platform_state(const EngineBlob& state) {
    if (state.bytes.empty()) return Ok{};
    return make_error(ErrorCode::kInvalidArgument, "this engine keeps no platform state");
  }

  // Logs what the engine counted of the VM `vm_name`, when it has ended.
  virtual void log_counters(const std::string& vm_name) const = 0;
  // The same figures, any time (none where the engine counts nothing).
  virtual std::vector<EngineCounter> counters() const { return {}; }
};

}  // namespace vmfork
