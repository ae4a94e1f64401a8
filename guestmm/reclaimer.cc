#include "guestmm/reclaimer.h"

#include <cassert>

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
  for (Participant& participant : participants_) {
    if (!participant.in_use.load(std::memory_order_relaxed)) {
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
  entry.stamp.store(epoch_.load(std::memory_order_seq_cst), std::memory_order_relaxed);
  entry.kind.store(static_cast<uint8_t>(kind), std::memory_order_relaxed);
  pending_.fetch_add(1, std::memory_order_relaxed);
  push(frame);
}

uint64_t Reclaimer::collect() {
  std::unique_lock lock(collect_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return 0;

  uint64_t epoch = epoch_.load(std::memory_order_seq_cst);
  bool everyone_current = true;
  for (const Participant& participant : participants_) {
    if (!participant.in_use.load(std::memory_order_acquire)) continue;
    const uint64_t announced = participant.announced.load(std::memory_order_acquire);
    if (announced != kOffline && announced != epoch) {
      everyone_current = false;
      break;
    }
  }
  if (everyone_current && epoch_.compare_exchange_strong(epoch, epoch + 1)) ++epoch;

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

}  // namespace vmfork
