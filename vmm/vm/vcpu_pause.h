// The pause of a VM's vCPUs: one holder at a time (a fork, DESIGN section 7,
// or a soft vCPU's exclusive section for a locked access the host cannot make
// atomic), every other running vCPU parked at an instruction boundary while it
// holds it.
//
// Deadlock freedom (DESIGN section 6). A vCPU that asks while another holds
// the pause is refused and queued; it stops before its instruction and parks
// like any other vCPU, so it counts for the holder. A holder waits only for
// the others to reach a boundary, which they do at their next basic block: one
// in a COW fault finishes it first, and that fault's shootdown does not wait
// for the holder, which is parked (acknowledged on its behalf) while it waits.
//
// Starvation freedom. The pause passes to the queued vCPUs in the order they
// were refused, and every time it changes hands the vCPUs parked for it wake
// and must park again for the next holder: a vCPU that resumes runs on to its
// next basic block before it honours a new pause (the vCPU's side of the
// rule, see SoftVcpu::check). Without both, a vCPU spinning on a locked
// access across a page (a pause each time) could take the pause again before
// a parked vCPU woke, forever, while the spinner waits for the parked one to
// release a lock.
//
// Locking: its own mutex is the innermost lock. Callers may hold theirs
// (Vm holds its mutex_ when it counts vCPUs or ends the VM); the pause never
// calls out, nor waits, while it holds its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

#include "vmm/hypervisor/pause_member.h"

namespace vmfork {

class VcpuPause {
 public:
  VcpuPause() = default;
  VcpuPause(const VcpuPause&) = delete;
  VcpuPause& operator=(const VcpuPause&) = delete;

  // --- Lock-free, for every basic block. ---
  // The VM ends, or a member other than `self` holds the pause: `self` must
  // stop at its next instruction boundary and park.
  bool must_stop(const PauseMember* self = nullptr) const {
    const PauseMember* holder = holder_.load(std::memory_order_acquire);
    return (holder != nullptr && holder != self) || ending();
  }
  bool ending() const { return ending_.load(std::memory_order_acquire); }

  // --- Membership: the vCPUs that still run (neither halted nor exited). ---
  void add_running();
  uint32_t running() const;
  // A member stopped for good; returns how many still run.
  uint32_t stopped();
  // The VM ends: every wait returns, and parking returns false from now on.
  void end();

  // --- The pause, on the members' own threads. ---
  // Takes the pause for `pauser`, or finds it handed over. False: another
  // member holds it; `pauser` is queued, must stop before its instruction and
  // park, and asks again when it resumes.
  bool try_take(PauseMember& pauser);
  // After try_take() (and kicking the others): waits until every other
  // running member has parked for `pauser`, or the VM ends. `pauser` is
  // parked meanwhile and stays parked.
  void wait_until_others_parked(PauseMember& pauser);
  // Ends the pause: hands it to the first queued member, or frees it. The
  // parked members wake either way.
  void resume_others();
  // --- The pause from outside: a host thread (a snapshot taken whatever
  // the guest does). `host` is a member that runs no guest code. ---
  // Takes the pause for `host`, in turn behind the members queued for it.
  // True: `host` holds it (end it with resume_others(), whatever follows).
  // False: the VM ended before `host` got it.
  bool take_from_outside(PauseMember& host);
  // After take_from_outside() (and kicking every vCPU): waits until every
  // running member has parked for `host`. False: the VM ends.
  bool wait_until_all_parked();

  // At a boundary where must_stop(&member) held: parks until the pause it
  // parked for ends (at once if that happened already, or if the pause was
  // handed to `member`). False: the VM ends (`member` stays parked).
  bool park_until_resumed(PauseMember& member);

 private:
  // Waits until `done()`: spins a little first (an exclusive section lasts
  // about a microsecond, far less than a sleep and a wake-up), then sleeps on
  // changed_. `done` reads only atomics; whoever changes them notifies.
  template <class Done>
  void wait_for(Done done);

  // Written under mutex_, read without it where they are atomics.
  std::atomic<const PauseMember*> holder_{nullptr};
  std::atomic<bool> ending_{false};
  std::atomic<uint32_t> running_{0};
  std::atomic<uint32_t> parked_{0};  // parked for this holder
  std::atomic<uint64_t> serial_{0};  // bumped when the pause changes hands
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<PauseMember*> waiting_;  // guarded by mutex_: refused, in order
};

}  // namespace vmfork
