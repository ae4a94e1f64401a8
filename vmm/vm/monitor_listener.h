// What the monitor tells an observer of its VMs (the control API's service:
// its VM table, events and metrics), as it happens. Calls come from vCPU
// threads, the monitor's reaping thread and API threads alike, possibly at
// once: a listener locks what it keeps and must not call back into the
// monitor or a VM from these calls.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "guestmm/accounting.h"
#include "vmm/hypervisor/hypervisor.h"
#include "vmm/hypervisor/machine.h"
#include "vmm/vm/journal.h"
#include "vmm/vm/vm.h"

namespace vmfork {

struct VmLaunched {
  std::string vm;
  Engine engine = Engine::kSoft;
  uint32_t vcpus = 0;
  uint64_t ram_bytes = 0;
  std::optional<Vm::Lineage> lineage;  // a clone's
  std::shared_ptr<Journal> console;
};

struct VmEnded {
  std::string vm;
  uint32_t status = 0;
  FaultCounters faults;
  SpaceAccounting frames;  // what its space held when it ended
  std::vector<EngineCounter> engine;
};

class MonitorListener {
 public:
  virtual ~MonitorListener() = default;
  // Started (Monitor::launch): its vCPUs may run from now on.
  virtual void vm_launched(const VmLaunched& launched) = 0;
  // A clone's first instruction, `latency_ns` after its fork or restore was requested.
  virtual void vm_first_instruction(const std::string& vm, uint64_t latency_ns) = 0;
  // `vm` ends because of `message` (a guest fault, a memory failure).
  virtual void vm_failed(const std::string& vm, const std::string& message) = 0;
  // Ended and destroyed.
  virtual void vm_ended(const VmEnded& ended) = 0;
  // `vm` forked into `clones` (launched), at a vCPU's request or from outside.
  virtual void vm_forked(const std::string& vm, const std::vector<std::string>& clones) = 0;
  virtual void vm_snapshotted(const SnapshotReport& report) = 0;
};

}  // namespace vmfork
