// The monitor: the guest memory every VM allocates from, and the VMs that
// run in it, originals and the clones they fork. It waits until every VM
// has ended and reports their statuses.
//
// A VM is destroyed as soon as it ends, whatever VMs launched before it
// still run: wait() joins its threads, closes its descriptors (kvm) and
// drops its address space, whose frames go back to the pool through
// reclamation. What the monitor reports of a VM (status, memory checksum,
// fork latency) is recorded then.
//
// Limits: at most kMaxVcpus vCPUs at once across every VM (each running
// vCPU is a thread, and each holds a reclamation slot). A fork whose clones
// would go past it is refused (RAX = -1 in the forker, a warning naming
// the limit); so is one whose threads the host will not create.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "guestmm/guest_memory.h"
#include "vmm/hypervisor/hypervisor.h"
#include "vmm/vm/monitor_listener.h"
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

// Where one fork's time went before its clones started (issue 13): the
// latency to a clone's first instruction alone does not say which step to
// make cheaper. Times from now_ns() (vmm/clock.h).
struct ForkPhases {
  std::string vm;  // the VM that forked
  uint32_t clones = 0;
  uint64_t pause_ns = 0;     // the request until every vCPU stood still
  uint64_t snapshot_ns = 0;  // freeze: vCPU and platform state, the O(1) memory snapshot
  uint64_t build_ns = 0;     // every clone's space, VM and threads, none started yet
  // A clone's start (its first instruction less the build) is its
  // ForkLatency less (built_at_ns - requested_ns).
  uint64_t requested_ns = 0;
  uint64_t built_at_ns = 0;
};

// The process exit status for a VM's status: 0 and 1..255 as they are; any
// other value (256, 0x80000000, ...) 255, since an exit status keeps only
// the low 8 bits and 256 must not read as success.
int exit_status_for(uint32_t vm_status);

class Monitor {
 public:
  // vCPUs of every VM at once, the reclaimer's vCPU slots.
  static constexpr uint64_t kMaxVcpus = Reclaimer::kMaxParticipants;

  // `pool_bytes`: the frame pool every VM and clone shares. kOnDemand suits
  // benchmarks that map far more guest RAM than they ever write. `open`
  // opens an engine the first time a VM needs it (open_hypervisor() of
  // vmm/engines, or a test's fake).
  static Result<std::unique_ptr<Monitor>> create(OpenHypervisor open, uint64_t pool_bytes,
                                                 Populate populate = Populate::kAhead);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  GuestMemory& memory() { return *memory_; }
  // The engine, opened on first use (its VMs share it).
  Result<Hypervisor*> hypervisor(Engine engine);

  // Records every VM's memory_checksum() when it ends (before wait()).
  void record_memory_checksums() { record_checksums_ = true; }
  // In launch order; filled by wait().
  std::vector<MemoryChecksum> memory_checksums() const;

  // Creates `vm`'s threads (unless Vm::spawn did) and starts it; the
  // monitor owns it from now on. Fails, the VM gone, when the host refuses
  // a thread. Any thread.
  Result<void> launch(std::unique_ptr<Vm> vm);
  // Destroys each VM as it ends, until every VM, clones included, has
  // ended. Returns 0 when every one ended with status 0, else
  // exit_status_for() the first non-zero status in launch order.
  int wait();
  // The daemon's wait: destroys each VM as it ends, and goes on while none
  // runs, until stop_all() and every VM has ended.
  void serve_until_stopped();

  // Told of every VM's life from now on; before the first launch. It must
  // outlive the monitor's VMs (wait() or serve_until_stopped() returned).
  void set_listener(MonitorListener* listener) { listener_ = listener; }

  // Whether VMs print their console lines on stdout (default); VMs created
  // from now on. Off, their lines go to their journals only.
  void set_console_echo(bool echo) { console_echo_ = echo; }
  bool console_echo() const { return console_echo_; }

  // Runs `use` on the launched VM `name`, which is not destroyed meanwhile
  // even if it ends (it waits). kNotFound when no VM of that name runs.
  Result<void> with_vm(const std::string& name, const std::function<void(Vm&)>& use);

  // The directory a guest's snapshot request (port 0x511) writes to, and
  // the guest program its config.json names. Before the first launch.
  void set_snapshot_target(std::filesystem::path dir, std::string guest_label);
  const std::optional<std::filesystem::path>& snapshot_dir() const { return snapshot_dir_; }
  const std::string& guest_label() const { return guest_label_; }
  // Snapshots the running VM `name` into `dir` (Vm::snapshot_to) from this
  // thread; the VM is not destroyed meanwhile, even if it ends. An error
  // when no VM of that name runs.
  Result<SnapshotReport> snapshot_vm(const std::string& name, const std::filesystem::path& dir);

  // Ends every VM with `status`, and every VM launched from now on; forks
  // are refused. Any thread (a signal's).
  void stop_all(uint32_t status);

  // VMs launched, and of those, how many ended with a non-zero status.
  struct Tally {
    uint64_t launched = 0;
    uint64_t failed = 0;
  };
  Tally tally() const;
  // The VM whose status wait() turns into the exit status: the first in
  // launch order that ended with a non-zero one.
  struct Failure {
    uint64_t order = 0;
    std::string vm;
    uint32_t status = 0;
  };
  std::optional<Failure> first_failure() const;

  // --- Called by VMs. ---
  // Whether `vcpus` more vCPUs would fit the limit now; an error naming the
  // limit (or the stop) otherwise.
  Result<void> check_vcpus(uint64_t vcpus) const;
  // Takes room for `vcpus` vCPUs (the same check), given back by
  // release_vcpus when they are gone.
  Result<void> reserve_vcpus(uint64_t vcpus);
  void release_vcpus(uint64_t vcpus);
  // The VM's last vCPU thread has stopped: wait() destroys it.
  void vm_ended(Vm& vm);
  // `vm` ends because of `message` (printed on stderr whatever the log level).
  void report_vm_error(const std::string& vm, const std::string& message);
  void record_fork_latency(const std::string& clone, uint64_t ns);
  void record_fork(const std::string& vm, const std::vector<std::string>& clones);
  // Every fork that built its clones, in the order they were built.
  void record_fork_phases(ForkPhases phases);
  // Every snapshot a VM wrote (at a guest's request or from outside).
  void record_snapshot(const SnapshotReport& report);
  std::vector<SnapshotReport> snapshots() const;
  std::vector<ForkLatency> fork_latencies() const;
  std::vector<ForkPhases> fork_phases() const;

 private:
  Monitor(OpenHypervisor open, std::unique_ptr<GuestMemory> memory)
      : open_(std::move(open)), memory_(std::move(memory)) {}

  struct Launched {
    uint64_t order = 0;  // launch order, from 0
    std::unique_ptr<Vm> vm;
  };
  struct Checksum {
    uint64_t order = 0;
    MemoryChecksum checksum;
  };
  Result<void> check_vcpus_locked(uint64_t vcpus) const;
  // Joins and destroys an ended VM, recording what is reported of it.
  void finish(Launched launched);
  // Destroys ended VMs until none runs and, `until_stopped`, stop_all() was called.
  void reap(bool until_stopped);

  const OpenHypervisor open_;
  std::unique_ptr<GuestMemory> memory_;
  bool record_checksums_ = false;        // set before the first launch
  bool console_echo_ = true;             // set before the VMs it applies to are created
  MonitorListener* listener_ = nullptr;  // set before the first launch
  mutable std::mutex mutex_;
  std::condition_variable vm_ended_;  // with mutex_
  // Guarded by mutex_ until opened (one per Engine); outlive the VMs.
  std::unique_ptr<Hypervisor> hypervisors_[2];
  std::unordered_map<const Vm*, Launched> running_;  // guarded by mutex_: launched, not destroyed
  std::deque<Vm*> ended_;                            // guarded by mutex_: of those, ended
  uint64_t launches_ = 0;                            // guarded by mutex_
  uint64_t vcpus_reserved_ = 0;                      // guarded by mutex_
  std::optional<uint32_t> stop_status_;              // guarded by mutex_: set by stop_all
  std::optional<Failure> first_failure_;             // guarded by mutex_: so far
  uint64_t failures_ = 0;                            // guarded by mutex_
  std::vector<Checksum> checksums_;                  // guarded by mutex_
  std::vector<ForkLatency> fork_latencies_;          // guarded by mutex_
  std::vector<ForkPhases> fork_phases_;              // guarded by mutex_
  std::vector<SnapshotReport> snapshots_;            // guarded by mutex_
  // Guarded by mutex_: VMs a host thread is snapshotting (wait() destroys
  // none of them until it is done); vm_ended_ is notified when one is.
  std::unordered_multiset<const Vm*> pinned_;
  std::optional<std::filesystem::path> snapshot_dir_;  // set before the first launch
  std::string guest_label_;
};

}  // namespace vmfork
