// A vCPU's view of guest memory: its translation cache, its end of the
// shootdown protocol and its reclamation epoch. Every guest access of an
// executor (the soft engine, or a test thread standing in for a vCPU) goes
// through translate(); the executor calls check() at least once per basic
// block. One thread uses a VcpuMemory at a time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "base/types.h"
#include "base/waiter.h"
#include "ept/access.h"
#include "ept/shootdown.h"
#include "ept/tlb.h"
#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/reclaimer.h"

namespace vmfork {

// How a vCPU starts: running (the creating thread uses it at once), or
// parked (a monitor creates it before its thread runs; the thread calls
// resume() first). A running vCPU that never checks would hold up every
// shootdown of its space.
enum class VcpuStart : uint8_t { kRunning, kParked };

class VcpuMemory final : public Waiter {
 public:
  // Joins `space`'s shootdown domain and reclamation.
  static Result<std::unique_ptr<VcpuMemory>> create(AddressSpace& space,
                                                    VcpuStart start = VcpuStart::kRunning);
  ~VcpuMemory() override;
  VcpuMemory(const VcpuMemory&) = delete;
  VcpuMemory& operator=(const VcpuMemory&) = delete;

  // The per-basic-block check: service pending shootdowns, pass a quiescent
  // point.
  void check() {
    if (target_.pending()) target_.service();
    memory_.reclaimer().quiescent(*participant_);
  }

  // The host address of `gpa` for `access`; the access must not cross a page.
  // Faults are resolved on this thread (servicing shootdowns while waiting).
  Result<std::byte*> translate(Gpa gpa, Access access) {
    if (const TranslationCache::Hit* hit = tlb_.lookup(eptp_, gpa.gfn());
        hit != nullptr && allows(hit->allowed, access)) {
      return memory_.frame_data(hit->frame) + gpa.page_offset();
    }
    return translate_slow(gpa, access);
  }

  // Halted or paused: initiators stop waiting for us and reclamation moves
  // on without us; resume() flushes whatever was requested meanwhile.
  void park();
  void resume();

  // Waiter: keep servicing our shootdowns while we wait on something, and
  // pass a quiescent point. That is safe mid-fault: the fault path holds
  // pointers only into tables exclusive to our space and to frames it holds
  // references on, and no translation of ours is protected by the epoch.
  void on_wait() override {
    waiter_.on_wait();
    if (target_.running()) memory_.reclaimer().quiescent(*participant_);
  }
  void poll() override { waiter_.poll(); }
  ShootdownTarget* own_shootdown_target() override { return &target_; }

  AddressSpace& space() const { return space_; }
  TranslationCache& tlb() { return tlb_; }
  ShootdownTarget& shootdown() { return target_; }

 private:
  VcpuMemory(AddressSpace& space, Reclaimer::Participant* participant);
  Result<std::byte*> translate_slow(Gpa gpa, Access access);

  AddressSpace& space_;
  GuestMemory& memory_;
  const Eptp eptp_;
  TranslationCache tlb_;
  ShootdownTarget target_{tlb_};
  TargetWaiter waiter_{target_};
  Reclaimer::Participant* participant_;
  bool joined_domain_ = true;
};

}  // namespace vmfork
