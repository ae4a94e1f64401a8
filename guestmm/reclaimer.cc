#include "guestmm/reclaimer.h"

#include <cassert>
#include <thread>

namespace vmfork {

Result<Reclaimer> Reclaimer::create(uint64_t frames,
                                    std::function<void(FrameId, FrameKind)> release) {
  Result<HostMapping> links = HostMapping::anonymous(frames * sizeof(Link));
  if (!links) return links.error();
  return Reclaimer(std::move(*links), std::move(release));
}

Reclaimer::Reclaimer(Reclaimer&& other) noexcept
    : links_(std::move(other.links_)), release_(std::move(other.release_)) {}

Reclaimer::Participant* Reclaimer::join() {
  std::lock_guard lock(membership_mutex_);
  for (size_t slot = 0; slot < participants_.size(); ++slot) {
    Participant& participant = participants_[slot];
    if (!participant.in_use.load(std::memory_order_relaxed)) {
      if (slot >= slots_used_.load(std::memory_order_relaxed)) {
        slots_used_.store(slot + 1, std::memory_order_seq_cst);
      }
      participant.announced.store(epoch_.load(std::memory_order_acquire),
                                  std::memory_order_release);
      participant.in_use.store(true, std::memory_order_release);
      return &participant;
    }
  }
  return nullptr;
}

void Reclaimer::leave(Participant* participant) {
  std::lock_guard lock(membership_mutex_);
  participant->announced.store(kOffline, std::memory_order_release);
  participant->in_use.store(false, std::memory_order_release);
}

void Reclaimer::push(FrameId frame) {
  Link& entry = link(frame);
  uint64_t head = head_plus_one_.load(std::memory_order_relaxed);
  do {
    entry.next_plus_one.store(head, std::memory_order_relaxed);
  } while (!head_plus_one_.compare_exchange_weak(head, frame.index() + 1, std::memory_order_release,
                                                 std::memory_order_relaxed));
}

void Reclaimer::retire(FrameId frame, FrameKind kind) {
  Link& entry = link(frame);
  // An RMW, not a load: it reads the latest epoch and is a release that
  // the collector's CAS acquires, so whoever later reads a newer epoch also
  // sees the unlink that preceded this retire (the C++ model, not just x86).
  entry.stamp.store(epoch_.fetch_add(0, std::memory_order_acq_rel), std::memory_order_relaxed);
  entry.kind.store(static_cast<uint8_t>(kind), std::memory_order_relaxed);
  pending_.fetch_add(1, std::memory_order_relaxed);
  push(frame);
}

uint64_t Reclaimer::collect() {
  std::unique_lock lock(collect_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return 0;

  uint64_t epoch = epoch_.load(std::memory_order_seq_cst);
  bool everyone_current = true;
  const size_t slots = slots_used_.load(std::memory_order_seq_cst);
  for (size_t slot = 0; slot < slots; ++slot) {
    const Participant& participant = participants_[slot];
    if (!participant.in_use.load(std::memory_order_acquire)) continue;
    const uint64_t announced = participant.announced.load(std::memory_order_acquire);
    if (announced != kOffline && announced != epoch) {
      everyone_current = false;
      break;
    }
  }
  if (everyone_current && epoch_.compare_exchange_strong(epoch, epoch + 1)) ++epoch;
  // Nothing became safe since the last walk unless the epoch moved.
  if (epoch == last_walk_epoch_) return 0;
  last_walk_epoch_ = epoch;

  // Take the whole list; put back what must wait longer. Pushes racing with
  // this land on the new list.
  uint64_t cursor = head_plus_one_.exchange(0, std::memory_order_acquire);
  uint64_t released = 0;
  while (cursor != 0) {
    const FrameId frame(cursor - 1);
    Link& entry = link(frame);
    cursor = entry.next_plus_one.load(std::memory_order_relaxed);
    if (entry.stamp.load(std::memory_order_relaxed) + 2 <= epoch) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      release_(frame, static_cast<FrameKind>(entry.kind.load(std::memory_order_relaxed)));
      ++released;
    } else {
      push(frame);
    }
  }
  return released;
}

HostWalkGuard::HostWalkGuard(Reclaimer& reclaimer) : reclaimer_(reclaimer) {
  // Every slot taken is a transient state (vCPUs leave, host walks end).
  while ((participant_ = reclaimer_.join()) == nullptr)
    std::this_thread::yield();
}

}  // namespace vmfork
