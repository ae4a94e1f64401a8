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
#include "vmm/kvm/kvm_host.h"
#include "vmm/vm/vm.h"

namespace vmfork {

struct MemoryChecksum {
  std::string vm;
  uint64_t checksum = 0;  // memory_checksum() when the VM ended
};

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
  // The host's KVM, opened on first use (the kvm engine's VMs share it).
  Result<kvm::KvmHost*> kvm_host();

  // Records every VM's memory_checksum() when it ends (before wait()).
  void record_memory_checksums() { record_checksums_ = true; }
  // In launch order; filled by wait().
  std::vector<MemoryChecksum> memory_checksums() const;

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
  bool record_checksums_ = false;  // set before the first launch
  mutable std::mutex mutex_;
  std::unique_ptr<kvm::KvmHost> kvm_;        // guarded by mutex_ until opened; outlives the VMs
  std::vector<MemoryChecksum> checksums_;    // guarded by mutex_
  std::vector<std::unique_ptr<Vm>> vms_;     // guarded by mutex_, in launch order
  std::vector<ForkLatency> fork_latencies_;  // guarded by mutex_
};

}  // namespace vmfork
