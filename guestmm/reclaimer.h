// Deferred reclamation (DESIGN section 5), epoch based. A frame whose last
// reference is gone may still be walked through (a table) by a vCPU that
// read the entry before it was replaced. It is reused only after every vCPU
// has passed a quiescent point after the free: between walks, acknowledging
// a shootdown, halted, paused or gone.
//
// Epochs: a retired frame is stamped with the global epoch E. The global
// epoch advances only once every online participant has announced the
// current one, so when it reaches E + 2 every participant announced E + 1,
// which it could only read after the frame was retired.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "base/result.h"
#include "base/types.h"
#include "base/waiter.h"
#include "ept/table_memory.h"
#include "guestmm/host_mapping.h"

namespace vmfork {

class Reclaimer {
 public:
  // Slots for vCPUs (join()): a monitor never runs more vCPUs than this.
  static constexpr size_t kMaxParticipants = 1024;
  // Slots for host walks (HostWalkGuard), apart from the vCPUs' so that no
  // number of vCPUs can keep a host walk (a fork's, a loader's) from
  // starting. A host walk ends by itself, so one that finds every slot
  // taken blocks until one is left, never for ever.
  static constexpr size_t kHostWalkSlots = 64;
  static constexpr uint64_t kOffline = ~uint64_t{0};

  // A participant's announced epoch; one per vCPU or host walk.
  struct Participant {
    std::atomic<uint64_t> announced{kOffline};
    std::atomic<bool> in_use{false};
  };

  // `release` hands a frame back to the pool once it is safe.
  static Result<Reclaimer> create(uint64_t frames, std::function<void(FrameId, FrameKind)> release);
  Reclaimer(Reclaimer&&) noexcept;
  Reclaimer& operator=(Reclaimer&&) = delete;

  // A vCPU's slot, announcing the current epoch; null when all
  // kMaxParticipants are taken (the caller refuses the vCPU).
  Participant* join();
  // A host walk's slot; blocks while all kHostWalkSlots are in walks.
  Participant* join_host_walk();
  // Gives a slot back: the participant holds nothing retired any more, which
  // is its last quiescent point (offline, so no collect waits for it).
  void leave(Participant* participant);

  // A quiescent point: the participant holds no reference to any retired
  // frame it obtained before now. Cheap when the epoch has not moved.
  void quiescent(Participant& participant) const {
    const uint64_t epoch = epoch_.load(std::memory_order_acquire);
    if (participant.announced.load(std::memory_order_relaxed) != epoch) {
      participant.announced.store(epoch, std::memory_order_release);
    }
  }
  // Halted or paused: never in the way of reclamation until it runs again.
  void offline(Participant& participant) const {
    participant.announced.store(kOffline, std::memory_order_release);
  }

  // Lock-free; any thread.
  void retire(FrameId frame, FrameKind kind);
  // Advances the epoch if it can and releases every frame that is safe.
  // Returns how many it released. Concurrent callers skip.
  uint64_t collect();

  uint64_t pending() const { return pending_.load(std::memory_order_relaxed); }
  uint64_t epoch() const { return epoch_.load(std::memory_order_relaxed); }

 private:
  Reclaimer(HostMapping links, std::function<void(FrameId, FrameKind)> release)
      : links_(std::move(links)), release_(std::move(release)) {}

  // Per frame while it waits: the next frame in the list, the epoch it was
  // retired in, and its kind.
  struct Link {
    std::atomic<uint64_t> next_plus_one;
    std::atomic<uint64_t> stamp;
    std::atomic<uint8_t> kind;
  };
  Link& link(FrameId frame) const { return links_.as<Link>()[frame.index()]; }
  void push(FrameId frame);

  HostMapping links_;
  std::function<void(FrameId, FrameKind)> release_;
  std::atomic<uint64_t> epoch_{2};
  std::atomic<uint64_t> head_plus_one_{0};  // the waiting frames (a Treiber stack, push only)
  std::atomic<uint64_t> pending_{0};
  uint64_t last_walk_epoch_ = 0;  // guarded by collect_mutex_
  std::mutex collect_mutex_;      // one collector at a time (never on a fault path: try_lock)
  std::mutex membership_mutex_;   // join/leave
  std::condition_variable host_walk_left_;  // with membership_mutex_
  std::array<Participant, kMaxParticipants> participants_{};
  std::array<Participant, kHostWalkSlots> host_walks_{};
  // One past the highest slot ever used in each array (written under
  // membership_mutex_): collect scans only these, and allocation calls
  // collect often.
  std::atomic<size_t> slots_used_{0};
  std::atomic<size_t> host_slots_used_{0};
};

// A host thread (a loader, a device, accounting) that walks EPT tables or
// touches frames without holding references takes part in reclamation for
// the duration, as a vCPU does between its quiescent points. As a waiter it
// passes a quiescent point on every spin, so a host write that waits for
// frames to come back does not hold their reclamation up itself. It takes
// one of the host-walk slots (never a vCPU's); a thread holds at most one
// guard at a time, so waiting for a slot cannot wait for itself.
class [[nodiscard]] HostWalkGuard final : public Waiter {
 public:
  explicit HostWalkGuard(Reclaimer& reclaimer);
  ~HostWalkGuard() override;
  HostWalkGuard(const HostWalkGuard&) = delete;
  HostWalkGuard& operator=(const HostWalkGuard&) = delete;

  void on_wait() override {
    HostWaiter::instance().on_wait();
    reclaimer_.quiescent(*participant_);
  }

 private:
  Reclaimer& reclaimer_;
  Reclaimer::Participant* participant_;
};

}  // namespace vmfork
