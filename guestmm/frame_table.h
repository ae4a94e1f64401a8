// Per-frame reference count and lock, one atomic word each: bit 63 is the
// lock, the bits below it the count. No global lock: every operation touches
// one frame's word.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>

#include "base/result.h"
#include "base/types.h"
#include "base/waiter.h"
#include "ept/lock_order.h"
#include "guestmm/host_mapping.h"

namespace vmfork {

class FrameTable {
 public:
  static constexpr uint64_t kLockBit = uint64_t{1} << 63;
  static constexpr uint64_t kCountMask = kLockBit - 1;

  static Result<FrameTable> create(uint64_t frames);

  // A frame leaves the free state with one reference.
  void set_allocated(FrameId frame) { word(frame).store(1, std::memory_order_release); }

  void get(FrameId frame) { word(frame).fetch_add(1, std::memory_order_relaxed); }
  // True when this dropped the last reference. acq_rel: everything done
  // through the reference happens before whoever frees the frame.
  bool put(FrameId frame) {
    const uint64_t previous = word(frame).fetch_sub(1, std::memory_order_acq_rel);
    assert((previous & kCountMask) != 0 && "reference count underflow");
    return (previous & kCountMask) == 1;
  }
  uint64_t refcount(FrameId frame) const {
    return word(frame).load(std::memory_order_acquire) & kCountMask;
  }

  void lock(FrameId frame, Waiter& waiter) {
    std::atomic<uint64_t>& w = word(frame);
    while ((w.fetch_or(kLockBit, std::memory_order_acquire) & kLockBit) != 0) {
      while ((w.load(std::memory_order_relaxed) & kLockBit) != 0)
        waiter.on_wait();
    }
  }
  void unlock(FrameId frame) { word(frame).fetch_and(~kLockBit, std::memory_order_release); }
  bool locked(FrameId frame) const {
    return (word(frame).load(std::memory_order_relaxed) & kLockBit) != 0;
  }

  uint64_t frames() const { return frames_; }

 private:
  FrameTable(HostMapping words, uint64_t frames) : words_(std::move(words)), frames_(frames) {}
  std::atomic<uint64_t>& word(FrameId frame) const {
    assert(frame.index() < frames_);
    return words_.as<std::atomic<uint64_t>>()[frame.index()];
  }

  HostMapping words_;  // sparse: untouched frames cost no host memory
  uint64_t frames_;
};

// Holds the lock of one data frame for a decision (lock rank kDataFrame).
class FrameLock {
 public:
  FrameLock(FrameTable& table, FrameId frame, Waiter& waiter) : table_(table), frame_(frame) {
    lock_order::acquired(LockRank::kDataFrame);
    table_.lock(frame_, waiter);
  }
  ~FrameLock() {
    table_.unlock(frame_);
    lock_order::released(LockRank::kDataFrame);
  }
  FrameLock(const FrameLock&) = delete;
  FrameLock& operator=(const FrameLock&) = delete;

 private:
  FrameTable& table_;
  FrameId frame_;
};

}  // namespace vmfork
