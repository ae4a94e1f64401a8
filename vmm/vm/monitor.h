// The monitor: the guest memory every VM allocates from, and the VMs that
// run in it, originals and the clones they fork. It waits until every VM
// has ended and reports their statuses.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "guestmm/guest_memory.h"
#include "vmm/vm/vm.h"

namespace vmfork {

struct ForkLatency {
  std::string clone;
  uint64_t ns = 0;  // from the fork request to the clone's first instruction
};

class Monitor {
 public:
  // `pool_bytes`: the frame pool every VM and clone shares. kOnDemand suits
  // benchmarks that map far more guest RAM than they ever write.
  static Result<std::unique_ptr<Monitor>> create(uint64_t pool_bytes,
                                                 Populate populate = Populate::kAhead);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  GuestMemory& memory() { return *memory_; }

  // Starts `vm`; the monitor owns it from now on. Any thread.
  void launch(std::unique_ptr<Vm> vm);
  // Waits until every VM, clones included, has ended. Returns 0 when every
  // one ended with status 0, else the first non-zero status.
  int wait();

  // --- Called by VMs. ---
  void report_vm_error(const std::string& message);
  void record_fork_latency(const std::string& clone, uint64_t ns);
  std::vector<ForkLatency> fork_latencies() const;

 private:
  explicit Monitor(std::unique_ptr<GuestMemory> memory) : memory_(std::move(memory)) {}

  std::unique_ptr<GuestMemory> memory_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Vm>> vms_;     // guarded by mutex_, in launch order
  std::vector<ForkLatency> fork_latencies_;  // guarded by mutex_
};

}  // namespace vmfork
