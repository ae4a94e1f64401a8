#include "guestmm/reclaimer.h"

#include <cassert>

#include "ept/test_point.h"

namespace vmfork {

Result<Reclaimer> Reclaimer::create(uint64_t frames,
                                    std::function<void(FrameId, FrameKind)> release) {
  Result<HostMapping> links = HostMapping::anonymous(frames * sizeof(Link));
  if (!links) return links.error();
  return Reclaimer(std::move(*links), std::move(release));
}

Reclaimer::Reclaimer(Reclaimer&& other) noexcept
    : links_(std::move(other.links_)), release_(std::move(other.release_)) {}

namespace {

// The first free slot of `slots`, taken and announcing `epoch`; null when
// all are in use. The caller holds the membership mutex.
template <size_t N>
Reclaimer::Participant* take_slot(std::array<Reclaimer::Participant, N>& slots,
                                  std::atomic<size_t>& used, const std::atomic<uint64_t>& epoch) {
  for (size_t slot = 0; slot < slots.size(); ++slot) {
    Reclaimer::Participant& participant = slots[slot];
    if (!participant.in_use.load(std::memory_order_relaxed)) {
      if (slot >= used.load(std::memory_order_relaxed)) {
        used.store(slot + 1, std::memory_order_seq_cst);
      }
      participant.announced.store(epoch.load(std::memory_order_acquire), std::memory_order_release);
      participant.in_use.store(true, std::memory_order_release);
      return &participant;
    }
  }
  return nullptr;
}

// Whether `participant` is one of `slots`.
template <size_t N>
bool holds(const std::array<Reclaimer::Participant, N>& slots,
           const Reclaimer::Participant* participant) {
  return participant >= slots.data() && participant < slots.data() + slots.size();
}

}  // namespace

Reclaimer::Participant* Reclaimer::join() {
  std::lock_guard lock(membership_mutex_);
  return take_slot(participants_, slots_used_, epoch_);
}

Reclaimer::Participant* Reclaimer::join_host_walk() {
  std::unique_lock lock(membership_mutex_);
  Participant* participant = nullptr;
  // Host walks are short and never wait for one another: a slot comes back.
  host_walk_left_.wait(lock, [&] {
    participant = take_slot(host_walks_, host_slots_used_, epoch_);
    return participant != nullptr;
  });
  return participant;
}

void Reclaimer::leave(Participant* participant) {
  const bool host_walk = holds(host_walks_, participant);
  std::lock_guard lock(membership_mutex_);
  participant->announced.store(kOffline, std::memory_order_release);
  participant->in_use.store(false, std::memory_order_release);
  if (host_walk) host_walk_left_.notify_one();
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
  // Every participant in use, vCPU or host walk, has announced `epoch` or
  // is offline.
  auto all_current = [epoch](const Participant* slots, size_t used) {
    for (size_t slot = 0; slot < used; ++slot) {
      const Participant& participant = slots[slot];
      if (!participant.in_use.load(std::memory_order_acquire)) continue;
      const uint64_t announced = participant.announced.load(std::memory_order_acquire);
      if (announced != kOffline && announced != epoch) return false;
    }
    return true;
  };
  const bool everyone_current =
      all_current(participants_.data(), slots_used_.load(std::memory_order_seq_cst)) &&
      all_current(host_walks_.data(), host_slots_used_.load(std::memory_order_seq_cst));
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
      test_point(TestPoint::kBeforeFramesReturned);
      release_(frame, static_cast<FrameKind>(entry.kind.load(std::memory_order_relaxed)));
      ++released;
    } else {
      push(frame);
    }
  }
  return released;
}

namespace {
#ifndef NDEBUG
// Guards held by this thread: one at most (a second would wait for a slot
// while holding one, and 64 threads doing that would wait for ever).
thread_local int host_walks_held = 0;
#endif
}  // namespace

HostWalkGuard::HostWalkGuard(Reclaimer& reclaimer)
    : reclaimer_(reclaimer), participant_(reclaimer_.join_host_walk()) {
#ifndef NDEBUG
  assert(host_walks_held == 0 && "a thread holds at most one HostWalkGuard");
  ++host_walks_held;
#endif
}

HostWalkGuard::~HostWalkGuard() {
  reclaimer_.leave(participant_);
#ifndef NDEBUG
  --host_walks_held;
#endif
}

}  // namespace vmfork
