// A TableMemory over plain arrays, so ept/ is tested alone (no frame pool,
// no guestmm/). Frames are never reused: a retired frame stays retired, so a
// test can ask which frames were freed, as what kind, and how many times.
// Frame 0 is reserved: FrameId(0) is never a valid table or data frame.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/result.h"
#include "base/types.h"
#include "base/waiter.h"
#include "ept/ept_entry.h"
#include "ept/table_memory.h"

namespace vmfork::ept_test {

class FakeTableMemory final : public TableMemory {
 public:
  static constexpr size_t kDefaultCapacity = 256;

  struct Retirement {
    FrameId frame;
    FrameKind kind;
  };

  // `capacity` counts the reserved frame 0.
  explicit FakeTableMemory(size_t capacity = kDefaultCapacity)
      : capacity_(capacity), frames_(std::make_unique<Frame[]>(capacity)) {}

  // --- TableMemory ---

  std::atomic<uint64_t>* entries(FrameId table) const override {
    return frame(table).entries.data();
  }
  Result<FrameId> allocate_table(Waiter& /*waiter*/) override {
    return allocate(FrameKind::kTable);
  }

  void get(FrameId id) override {
    if (frame(id).refcount.fetch_add(1, std::memory_order_relaxed) == 0) {
      ADD_FAILURE() << "get() on frame " << id.index() << " which has no reference";
    }
  }
  bool put(FrameId id) override {
    const uint64_t before = frame(id).refcount.fetch_sub(1, std::memory_order_acq_rel);
    if (before == 0) {
      ADD_FAILURE() << "put() on frame " << id.index() << " which has no reference";
    }
    return before == 1;
  }
  uint64_t refcount(FrameId id) const override {
    return frame(id).refcount.load(std::memory_order_acquire);
  }
  void retire(FrameId id, FrameKind kind) override {
    Frame& f = frame(id);
    if (f.refcount.load(std::memory_order_acquire) != 0) {
      ADD_FAILURE() << "retire() of frame " << id.index() << " which still has references";
    }
    std::lock_guard guard(retired_mutex_);
    retired_.push_back(Retirement{id, kind});
  }

  void lock(FrameId id, Waiter& waiter) override {
    std::atomic<bool>& locked = frame(id).locked;
    while (locked.exchange(true, std::memory_order_acquire)) {
      waiter.on_wait();
    }
  }
  void unlock(FrameId id) override {
    if (!frame(id).locked.exchange(false, std::memory_order_release)) {
      ADD_FAILURE() << "unlock() of frame " << id.index() << " which is not locked";
    }
  }

  // --- For tests ---

  // A data frame with a reference count of 1 (the caller's).
  Result<FrameId> allocate_data() { return allocate(FrameKind::kData); }

  size_t tables_allocated() const { return tables_allocated_.load(std::memory_order_relaxed); }
  size_t data_allocated() const { return data_allocated_.load(std::memory_order_relaxed); }
  // Every frame handed out so far, in allocation order.
  std::vector<FrameId> allocated_frames() const {
    std::vector<FrameId> frames;
    const size_t end = next_.load(std::memory_order_acquire);
    for (size_t i = 1; i < end && i < capacity_; ++i) {
      frames.push_back(FrameId(i));
    }
    return frames;
  }
  FrameKind allocated_kind(FrameId id) const { return frame(id).kind; }
  bool frame_locked(FrameId id) const { return frame(id).locked.load(std::memory_order_acquire); }

  std::vector<Retirement> retired() const {
    std::lock_guard guard(retired_mutex_);
    return retired_;
  }
  size_t times_retired(FrameId id) const {
    std::lock_guard guard(retired_mutex_);
    size_t count = 0;
    for (const Retirement& r : retired_) {
      if (r.frame == id) {
        ++count;
      }
    }
    return count;
  }
  std::optional<FrameKind> retired_kind(FrameId id) const {
    std::lock_guard guard(retired_mutex_);
    for (const Retirement& r : retired_) {
      if (r.frame == id) {
        return r.kind;
      }
    }
    return std::nullopt;
  }

 private:
  struct Frame {
    std::array<std::atomic<uint64_t>, kEptEntriesPerTable> entries{};  // zeroed
    std::atomic<uint64_t> refcount{0};
    std::atomic<bool> locked{false};
    FrameKind kind = FrameKind::kData;  // written once, before the frame is handed out
  };
  static_assert(sizeof(Frame::entries) == kPageSize, "a frame holds one 4 KiB table");

  Result<FrameId> allocate(FrameKind kind) {
    const size_t index = next_.fetch_add(1, std::memory_order_acq_rel);
    if (index >= capacity_) {
      return make_error(ErrorCode::kOutOfFrames, "fake table memory is full");
    }
    Frame& f = frames_[index];
    f.kind = kind;
    f.refcount.store(1, std::memory_order_release);
    (kind == FrameKind::kTable ? tables_allocated_ : data_allocated_)
        .fetch_add(size_t{1}, std::memory_order_relaxed);
    return FrameId(index);
  }

  Frame& frame(FrameId id) const {
    assert(id.index() != 0 && "frame 0 is reserved");
    assert(id.index() < next_.load(std::memory_order_acquire) && id.index() < capacity_ &&
           "frame was never allocated");
    return frames_[id.index()];
  }

  const size_t capacity_;
  std::unique_ptr<Frame[]> frames_;
  std::atomic<size_t> next_{1};  // frame 0 is reserved
  std::atomic<size_t> tables_allocated_{0};
  std::atomic<size_t> data_allocated_{0};
  mutable std::mutex retired_mutex_;
  std::vector<Retirement> retired_;  // guarded by retired_mutex_
};

}  // namespace vmfork::ept_test
