// One virtual machine: its address space, its vCPUs (a thread each), its
// devices (console 0x3F8, exit 0xF4, fork 0x510; DESIGN section 8), and the
// pause that stops every vCPU at an instruction boundary, for a fork or for
// one vCPU's exclusive section (VcpuPause).
//
// A VM that misbehaves ends alone: the error names the VM, the vCPU, the
// RIP and the cause, and the VM's status is kVmErrorStatus.
//
// Life: create() makes the vCPUs, spawn() their threads, which wait until
// start() (Monitor::launch) lets them run; so a fork can build every clone,
// threads included, before any starts, and give up on all of them (a VM
// never started is abandoned: its threads leave before any guest
// instruction). When its last vCPU thread stops, a started VM tells the
// monitor, which destroys it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "guestmm/address_space.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/devices/pc_ports.h"
#include "vmm/hypervisor/hypervisor.h"
#include "vmm/hypervisor/machine.h"
#include "vmm/hypervisor/vcpu.h"
#include "vmm/hypervisor/vm_host.h"
#include "vmm/snapshot/snapshot_state.h"
#include "vmm/vm/console.h"
#include "vmm/vm/journal.h"
#include "vmm/vm/ports.h"
#include "vmm/vm/vcpu_pause.h"

namespace vmfork {

class Monitor;
class MemorySnapshot;

inline constexpr uint32_t kVmErrorStatus = 1;

// A snapshot written (DESIGN section 7).
struct SnapshotReport {
  std::string vm;
  std::filesystem::path dir;
  uint64_t pause_ns = 0;  // the vCPUs stopped: states captured, the memory frozen (O(1))
  uint64_t write_ns = 0;  // the files, written while the VM ran on
  uint64_t pages = 0;     // stored in the memory file
  bool diff = false;      // only the pages no longer shared with its parent
};

// The engine runs the vCPUs (vmm/hypervisor/hypervisor.h): the VM makes them
// through its machine and they call back through VmHost.
class Vm final : public VmHost {
 public:
  // A VM whose vCPUs start from `vcpus` (index i is vCPU i), run by
  // `hypervisor` (the monitor's, which outlives the VM). `fork_request_ns`
  // is set for a clone: when its fork was requested (for the fork latency).
  // `platform`: a PC clone's (null for a booted VM and a freestanding one).
  static Result<std::unique_ptr<Vm>> create(Monitor& monitor, Hypervisor& hypervisor,
                                            std::string name, std::unique_ptr<AddressSpace> space,
                                            const GuestLayout& layout,
                                            const std::vector<VcpuSnapshot>& vcpus,
                                            std::optional<uint64_t> fork_request_ns,
                                            const PlatformSnapshot* platform = nullptr);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Creates the vCPU threads, which wait for start(). On failure (the host
  // refused a thread) the VM is abandoned. Once only.
  Result<void> spawn();
  bool spawned() const { return spawned_; }
  // Lets the threads run; the monitor has taken the VM (it is told when the
  // VM ends). Once, after spawn().
  void start();
  // Ends the VM with `status` (a signal stopping the monitor).
  void stop(uint32_t status) { end(status); }
  // Waits for every vCPU thread; then the VM has ended.
  void join();
  const std::string& name() const { return name_; }
  // The exit status once ended: the guest's (any 32-bit value), 0 when every
  // vCPU halted, or kVmErrorStatus.
  uint32_t status() const;
  uint32_t vcpu_count() const { return static_cast<uint32_t>(vcpus_.size()); }

  Engine engine() const { return hypervisor_.engine(); }
  const GuestLayout& layout() const { return layout_; }

  // Where a VM came from: the VM it was forked from, or the snapshot
  // directory it was restored from, and its clone id there (1..N).
  struct Lineage {
    std::string parent;
    uint32_t clone_id = 0;
  };
  // Before the monitor launches it.
  void set_lineage(Lineage lineage) { lineage_ = std::move(lineage); }
  const std::optional<Lineage>& lineage() const { return lineage_; }
  // What the VM printed (line by line); it outlives the VM.
  const std::shared_ptr<Journal>& console_journal() const { return console_.journal(); }

  // --- From a host thread (the control API): each stops every vCPU at an
  // instruction boundary (VcpuPause::take_from_outside) unless the VM is
  // paused already, and lets them run on after. One at a time. A VM that
  // ended (or was never started) refuses them with kWrongState. ---
  enum class SnapshotKind {
    kAuto,  // a diff for a VM restored from a snapshot, else full
    kFull,  // every page, with no parent
    kDiff,  // only pages no longer shared with the snapshot it was restored from
  };
  // Snapshots the running VM into `dir` (DESIGN section 7): its vCPUs stop
  // while their states are captured and the memory is frozen, then run on
  // while the files are written from the frozen frames.
  Result<SnapshotReport> snapshot_to(const std::filesystem::path& dir,
                                     SnapshotKind kind = SnapshotKind::kAuto);
  // Forks the VM into `clones` clones as the fork port does, but from
  // outside: no vCPU is told (clone k learns k from its boot-info page). The
  // clones start at once, even when the VM is paused. Returns their names.
  Result<std::vector<std::string>> fork_from_outside(uint32_t clones);
  // Keeps every vCPU parked until resume(); kWrongState when paused already.
  // `then` runs once it is done, before any other operation from outside
  // (the control API records the new state there, in order).
  Result<void> pause(const std::function<void()>& then = {});
  Result<void> resume(const std::function<void()>& then = {});
  bool paused() const;
  // What the VM's space holds, walked while it is paused (exact: no fault
  // is in flight); kWrongState when it is not paused.
  Result<SpaceAccounting> account_while_paused() const;
  // The engine's own counters of the VM (kvm: host mappings, realized runs).
  std::vector<EngineCounter> engine_counters() const { return machine_->counters(); }
  // Logs what the engine counted of the VM (once it has ended).
  void log_engine_counters() const { machine_->log_counters(name_); }

  // --- VmHost: called by the VM's vCPU threads and its engine. ---
  AddressSpace& space() override { return *space_; }
  Platform platform() const override { return layout_.platform(); }
  // The devices; `out` of 4 bytes to the fork port is a fork request.
  Result<PortAction> port_out(Vcpu& vcpu, uint16_t port, uint8_t size, uint32_t value) override;
  Result<uint32_t> port_in(Vcpu& vcpu, uint16_t port, uint8_t size) override;
  bool must_stop(const Vcpu* self = nullptr) const override { return pause_.must_stop(self); }
  bool ending() const override { return pause_.ending(); }
  bool park_until_resumed(Vcpu& vcpu) override { return pause_.park_until_resumed(vcpu); }
  bool serve_fork_request(Vcpu& vcpu, std::optional<uint32_t>& request) override;
  // The section is the pause of a fork, held by `vcpu`, which runs on alone.
  // False: another vCPU holds the pause (a fork, or its own section; `vcpu`
  // is queued for it) or the VM ends.
  bool begin_exclusive(Vcpu& vcpu) override;
  void end_exclusive() override { pause_.resume_others(); }
  // Records the fork latency (a clone) once the VM has started.
  void note_first_instruction() override;
  void vcpu_halted(Vcpu& vcpu) override;
  void vcpu_failed(Vcpu& vcpu, const std::string& cause) override;
  void vcpu_exited() override;
  void memory_failed(const std::string& cause) override;

 private:
  Vm(Monitor& monitor, Hypervisor& hypervisor, std::string name,
     std::unique_ptr<AddressSpace> space, const GuestLayout& layout,
     std::optional<uint64_t> fork_request_ns);
  Result<void> create_vcpus(const std::vector<VcpuSnapshot>& vcpus,
                            const PlatformSnapshot* platform);
  void end(uint32_t status);
  // Platform::kPc: the legacy ports, wired to the console and machine_.
  void make_pc_ports();
  // Never started and never will be: threads already made leave at once.
  void abandon();
  // One fewer running vCPU. True when it was the last one and the monitor
  // must be told (it took the VM); tell it with mutex_ released.
  bool one_fewer_running_locked();
  void kick_all(const Vcpu* except);
  // VcpuPause's try_take and wait_until_others_parked, with the other vCPUs
  // kicked to their boundary in between.
  bool pause_others(Vcpu& pauser);
  // For an operation from outside, outside_mutex_ held: every vCPU parked
  // (the pause taken for `host`), or they are already (paused_).
  Result<void> stop_vcpus_locked(PauseMember& host);
  void restart_vcpus_locked();
  // Performs `vcpu`'s fork request (it stopped right after its `out`).
  // False: another vCPU is pausing the VM; park, then try again.
  bool try_fork(Vcpu& vcpu, uint32_t clones);
  // The same for a snapshot request (port 0x511): the others run on while
  // `vcpu`, parked, writes the files; its RAX is 0, or -1 on an error.
  bool try_snapshot(Vcpu& vcpu);

  // What a snapshot or a fork keeps of the paused VM.
  struct Frozen {
    std::vector<VcpuSnapshot> vcpus;
    std::optional<PlatformSnapshot> platform;  // Platform::kPc
    std::unique_ptr<MemorySnapshot> memory;
  };
  // Every vCPU's state (the requester's past its request) and an O(1)
  // snapshot of the memory; the caller holds the pause, every other vCPU
  // parked. When the engine cannot restart the VM's memory after it, the
  // VM ends.
  Result<Frozen> freeze(Vcpu* requester);
  Result<SnapshotReport> write_frozen(const std::filesystem::path& dir, const Frozen& frozen,
                                      std::optional<uint32_t> requester, uint64_t pause_ns,
                                      SnapshotKind kind = SnapshotKind::kAuto);
  // Ends the VM on an error of its own (not one vCPU's).
  void fail(const std::string& cause);
  // Builds and launches the clones of a fork; the caller stopped every
  // vCPU. `forker` (none from outside) resumes in each clone k with RAX = k.
  // Refused, nothing started, when they would not fit the monitor's vCPU
  // limit or one cannot be built. Returns the clones' names.
  // When a fork was asked for, and when every vCPU stood still after
  // (now_ns()): the start of its latency and the end of its pause.
  struct ForkClock {
    uint64_t requested_ns = 0;
    uint64_t stopped_ns = 0;
  };
  Result<std::vector<std::string>> fork_stopped(Vcpu* forker, uint32_t clones, ForkClock clock);
  // The clones of `frozen` (the forker's RAX is set in its vCPU states per
  // clone); none when one cannot be built.
  Result<std::vector<std::unique_ptr<Vm>>> build_clones(Frozen& frozen,
                                                        std::optional<uint32_t> forker,
                                                        uint32_t clones, uint64_t requested_ns);
  std::string next_clone_name();

  Monitor& monitor_;
  uint64_t reserved_vcpus_ = 0;  // of the monitor's vCPU limit, given back by ~Vm
  Hypervisor& hypervisor_;
  const std::string name_;
  std::unique_ptr<AddressSpace> space_;
  std::unique_ptr<Machine> machine_;  // after space_: it may map it; outlives vcpus_
  // Platform::kPc only: the legacy ports, which drive machine_'s interrupt
  // lines (so they go first).
  std::unique_ptr<PcPorts> pc_ports_;
  const GuestLayout layout_;
  const std::optional<uint64_t> fork_request_ns_;
  std::optional<Lineage> lineage_;  // set before the launch
  std::atomic<bool> first_instruction_seen_{false};
  Console console_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;  // fixed once created

  // The pause; it also counts the vCPUs that run and knows the VM ends. Its
  // count and its end change only under mutex_ (taken first, then the
  // pause's own lock), so that they change together with started_,
  // launched_ and status_; changed_ is notified with them.
  VcpuPause pause_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<uint32_t> status_;  // guarded by mutex_
  bool spawned_ = false;            // the creating thread's, until start()
  bool started_ = false;            // guarded by mutex_: threads may run guest code
  bool launched_ = false;           // guarded by mutex_: the monitor took the VM
  uint32_t clones_made_ = 0;        // guarded by the pause (only the pauser forks)
  // Operations from outside, one at a time; paused_: the pause is held for
  // outside_pauser_ until resume().
  mutable std::mutex outside_mutex_;
  std::unique_ptr<PauseMember> outside_pauser_;
  bool paused_ = false;  // guarded by outside_mutex_
  // Per vCPU, its own thread's: its pending request at the fork device is a
  // snapshot (port 0x511), not a fork.
  std::vector<uint8_t> snapshot_requested_;
};

}  // namespace vmfork
