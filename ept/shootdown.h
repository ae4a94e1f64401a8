// INVEPT shootdown (DESIGN section 6). Per EPTP, a domain: the vCPUs that
// may cache its translations. The initiator marks each target stale, kicks
// it, and waits for its acknowledgement; a target checks at least once per
// basic block, flushes its translation cache and acknowledges. A target that
// is not running (halted, paused, exited) is acknowledged on its behalf and
// flushes before it runs again.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>

#include "base/waiter.h"
#include "ept/ept_entry.h"
#include "ept/tlb.h"

namespace vmfork {

class ShootdownBatch;

// Proof that an INVEPT completed on every vCPU of a domain. Only a finished
// ShootdownBatch makes one; LeafLock::make_writable() demands one.
class InveptDone {
 private:
  friend class ShootdownBatch;
  InveptDone() = default;
};

// The vCPU side of shootdowns; one per vCPU.
class ShootdownTarget {
 public:
  explicit ShootdownTarget(TranslationCache& tlb) : tlb_(tlb) {}
  ShootdownTarget(const ShootdownTarget&) = delete;
  ShootdownTarget& operator=(const ShootdownTarget&) = delete;

  // --- Called by the owning vCPU thread. ---

  // Cheap enough for every basic block.
  bool pending() const {
    return requested_.load(std::memory_order_acquire) != acked_.load(std::memory_order_relaxed);
  }
  // Flushes what was requested and acknowledges it. Returns true if there
  // was anything to service.
  bool service();
  // The vCPU stops running; initiators stop waiting for it.
  void park();
  // The vCPU runs again: it flushes whatever was requested while parked.
  void resume();
  // The vCPU initiates a shootdown itself: it flushes what a request for
  // `eptp` (all contexts if invalid) would, with no request posted.
  void flush_own(Eptp eptp);
  bool running() const { return running_.load(std::memory_order_seq_cst); }
  uint64_t serviced() const { return serviced_.load(std::memory_order_relaxed); }

  // Called when a request arrives for a running target (e.g. to interrupt a
  // vCPU that does not poll). Set before the target joins a domain.
  void set_kick(std::function<void()> kick) { kick_ = std::move(kick); }

  // --- Called by initiators. ---

  // Posts a single-context (`eptp` valid) or all-context (`eptp` invalid)
  // request; returns the ticket to wait for.
  uint64_t request(Eptp eptp);
  // True once the target acknowledged `ticket` or stopped running.
  bool acknowledged(uint64_t ticket) const {
    return acked_.load(std::memory_order_acquire) >= ticket || !running();
  }

 private:
  static constexpr uint64_t kNoContext = 0;
  static constexpr uint64_t kAllContexts = ~uint64_t{0};

  TranslationCache& tlb_;  // owner thread only
  std::function<void()> kick_;

  // A shootdown costs one cache-line transfer each way and no more: the
  // initiators write only this line (running_ changes only when the vCPU
  // parks or resumes), and the target writes only the next one.
  alignas(64) std::atomic<uint64_t> requested_{0};
  // What to flush: the union of every context ever requested, so the
  // target never writes it: kNoContext, one EPTP's raw value, or
  // kAllContexts once requests for two contexts were seen (flushing more
  // than was asked is always correct, and a vCPU serves one space).
  std::atomic<uint64_t> pending_context_{kNoContext};
  std::atomic<bool> running_{true};

  alignas(64) std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> serviced_{0};
};

// The waiter of a vCPU thread: services its own shootdowns while it spins,
// and yields when spinning does not help (the holder may not be running).
class TargetWaiter : public Waiter {
 public:
  explicit TargetWaiter(ShootdownTarget& target) : target_(target) {}
  void on_wait() override;
  void poll() override {
    if (target_.pending()) target_.service();
  }
  ShootdownTarget* own_shootdown_target() override { return &target_; }

 private:
  ShootdownTarget& target_;
  uint32_t spins_ = 0;
};

// The vCPUs that may cache the translations of one EPTP.
class ShootdownDomain {
 public:
  static constexpr size_t kMaxTargets = 256;

  // Members join before they run and leave after they stop. remove() must
  // not race with an initiator that may have posted to the target: a vCPU
  // that stops for good parks, and leaves the domain only when no fault can
  // be in flight in its space (VM teardown).
  // Returns false when the domain is full.
  [[nodiscard]] bool add(ShootdownTarget* target);
  void remove(ShootdownTarget* target);
  // The members now.
  size_t size() const { return members_.load(std::memory_order_relaxed); }
  // Time initiators spent waiting for acknowledgements, in all (for metrics).
  uint64_t wait_ns() const { return wait_ns_.load(std::memory_order_relaxed); }

 private:
  friend class ShootdownBatch;
  std::atomic<uint64_t> wait_ns_{0};
  std::mutex membership_mutex_;  // serializes add/remove only
  std::array<std::atomic<ShootdownTarget*>, kMaxTargets> targets_{};
  std::atomic<size_t> count_{0};  // slots [0, count_) may be in use
  std::atomic<size_t> members_{0};
};

// One INVEPT across a domain. Requests go out when it is made; wait()
// completes it. Destroying an unwaited batch is a bug (asserted).
class [[nodiscard]] ShootdownBatch {
 public:
  // `initiator` is the calling thread's waiter; when it is a vCPU of the
  // domain, its own translations are flushed at once.
  static ShootdownBatch single_context(ShootdownDomain& domain, Eptp eptp,
                                       Waiter& initiator = HostWaiter::instance());
  static ShootdownBatch all_context(ShootdownDomain& domain,
                                    Waiter& initiator = HostWaiter::instance());
  ShootdownBatch(ShootdownBatch&& other) noexcept;
  ShootdownBatch& operator=(ShootdownBatch&&) = delete;
  ~ShootdownBatch();

  // Waits until every target acknowledged; `waiter` keeps the caller's own
  // shootdowns serviced meanwhile.
  InveptDone wait(Waiter& waiter);

 private:
  ShootdownBatch(ShootdownDomain& domain, Eptp eptp, ShootdownTarget* self);

  // The targets that got a request, with their tickets: a slot reused by
  // another vCPU after a removal must not be mistaken for its predecessor.
  // Left uninitialized past count_: zeroing 4 KiB would cost every fault.
  std::array<ShootdownTarget*, ShootdownDomain::kMaxTargets> targets_;
  std::array<uint64_t, ShootdownDomain::kMaxTargets> tickets_;
  size_t count_ = 0;
  bool done_ = false;
  ShootdownDomain* domain_;  // where wait() adds its time
};

}  // namespace vmfork
