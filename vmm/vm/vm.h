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
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "guestmm/address_space.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/kvm/kvm_machine.h"
#include "vmm/soft/cpu_environment.h"
#include "vmm/vm/console.h"
#include "vmm/vm/engine.h"
#include "vmm/vm/vcpu.h"
#include "vmm/vm/vcpu_pause.h"

namespace vmfork {

class Monitor;
class MemorySnapshot;

inline constexpr uint32_t kVmErrorStatus = 1;

namespace port {
inline constexpr uint16_t kConsole = 0x3F8;
inline constexpr uint16_t kExit = 0x0F4;
inline constexpr uint16_t kFork = 0x510;
}  // namespace port

class Vm {
 public:
  // A VM whose vCPUs start from `vcpus` (index i is vCPU i), each holding
  // `engine`'s state. `fork_request_ns` is set for a clone: when its fork
  // was requested (for the fork latency).
  static Result<std::unique_ptr<Vm>> create(Monitor& monitor, Engine engine, std::string name,
                                            std::unique_ptr<AddressSpace> space,
                                            const GuestLayout& layout,
                                            const std::vector<VcpuSnapshot>& vcpus,
                                            std::optional<uint64_t> fork_request_ns);
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

  // --- Called by the VM's vCPU threads. ---
  AddressSpace& space() { return *space_; }
  Result<soft::PortAction> port_out(Vcpu& vcpu, uint16_t port, uint8_t size, uint32_t value);
  Result<uint32_t> port_in(Vcpu& vcpu, uint16_t port, uint8_t size);
  // A pause or the end was requested: the vCPU must stop at the next
  // boundary. With `self`: a pause that `self` holds does not count.
  bool must_stop(const Vcpu* self = nullptr) const { return pause_.must_stop(self); }
  bool ending() const { return pause_.ending(); }
  // The vCPU stopped for a pause: parks until it ends (or is handed to this
  // vCPU). False: the VM ends.
  bool park_until_resumed(Vcpu& vcpu) { return pause_.park_until_resumed(vcpu); }
  // At the boundary after `vcpu`'s `out` to the fork port: serves `request`
  // (reset once served), or parks while another vCPU's pause goes first
  // (the request is retried after it). False: the VM ended.
  bool serve_fork_request(Vcpu& vcpu, std::optional<uint32_t>& request);
  // An exclusive section for `vcpu` (the soft engine's locked accesses that
  // the host cannot make atomic): the pause of a fork, held by `vcpu`, which
  // runs on alone. True: every other running vCPU is parked at an
  // instruction boundary until end_exclusive(). False: another vCPU holds
  // the pause (a fork, or its own section; `vcpu` is queued for it) or the
  // VM ends; the caller stops before its instruction and parks
  // (park_until_resumed), then tries again.
  bool begin_exclusive(Vcpu& vcpu);
  void end_exclusive() { pause_.resume_others(); }
  void vcpu_halted(Vcpu& vcpu);
  void vcpu_failed(Vcpu& vcpu, const std::string& cause);
  // The vCPU's thread is about to return (the VM ends).
  void vcpu_exited();
  // The vCPU's thread is about to run its first guest instruction: blocks
  // until the VM is started, then records the fork latency (a clone). The
  // VM may have ended instead (abandoned): the thread must check ending().
  void note_first_instruction();

  // --- Called by the kvm engine's fault service. ---
  // A fault of the vCPU thread `thread_id` could not be served: the VM ends
  // with an error naming the vCPU and the cause.
  void memory_failed(const Error& error, pid_t thread_id);

  Engine engine() const { return engine_; }
  // The kvm engine's side of the VM (null on the soft engine).
  const kvm::KvmMachine* kvm_machine() const { return kvm_.get(); }

 private:
  Vm(Monitor& monitor, Engine engine, std::string name, std::unique_ptr<AddressSpace> space,
     const GuestLayout& layout, std::optional<uint64_t> fork_request_ns);
  Result<void> create_vcpus(const std::vector<VcpuSnapshot>& vcpus);
  void end(uint32_t status);
  // Never started and never will be: threads already made leave at once.
  void abandon();
  // One fewer running vCPU. True when it was the last one and the monitor
  // must be told (it took the VM); tell it with mutex_ released.
  bool one_fewer_running_locked();
  void kick_all(const Vcpu* except);
  // VcpuPause's try_take and wait_until_others_parked, with the other vCPUs
  // kicked to their boundary in between.
  bool pause_others(Vcpu& pauser);
  // Performs `vcpu`'s fork request (it stopped right after its `out`).
  // False: another vCPU is pausing the VM; park, then try again.
  bool try_fork(Vcpu& vcpu, uint32_t clones);
  // Builds the clones of a fork; the caller stopped every vCPU. RAX for the
  // forking vCPU: 0, or -1 when no clone could start (refused: a warning
  // names the reason).
  uint64_t build_clones_while_paused(Vcpu& forker, uint32_t clones, uint64_t requested_ns);
  // The clones of `snapshot`; none when one cannot be built.
  Result<std::vector<std::unique_ptr<Vm>>> build_clones(const MemorySnapshot& snapshot,
                                                        std::vector<VcpuSnapshot>& states,
                                                        uint32_t forker, uint32_t clones,
                                                        uint64_t requested_ns);
  std::string next_clone_name();

  Monitor& monitor_;
  uint64_t reserved_vcpus_ = 0;  // of the monitor's vCPU limit, given back by ~Vm
  const Engine engine_;
  const std::string name_;
  std::unique_ptr<AddressSpace> space_;
  std::unique_ptr<kvm::KvmMachine> kvm_;  // after space_: it realizes it
  const GuestLayout layout_;
  const std::optional<uint64_t> fork_request_ns_;
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
};

}  // namespace vmfork
