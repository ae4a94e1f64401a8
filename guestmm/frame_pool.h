// The frame pool: one memfd, sparse, holding every data and table frame of
// every VM. Freed frames are recycled first; fresh frames are populated in
// bulk ahead of demand by a background thread, so a COW copy takes no host
// page fault on its hot path (a host fault costs ~10 us, a copy ~50 ns).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/host_mapping.h"

namespace vmfork {

enum class Populate : uint8_t {
  kAhead,     // a background thread keeps fresh frames populated ahead of use
  kOnDemand,  // fresh frames are populated by the host when first touched
};
enum class Zeroed : uint8_t { kNo, kYes };

struct FramePoolOptions {
  uint64_t capacity_bytes = 0;
  Populate populate = Populate::kAhead;
  uint64_t populate_ahead_bytes = uint64_t{32} << 20;
};

class FramePool {
 public:
  static Result<std::unique_ptr<FramePool>> create(const FramePoolOptions& options);
  ~FramePool();
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;

  // A frame for its caller alone; recycled frames first. Its contents are
  // zero when `zeroed` says so, unspecified otherwise.
  Result<FrameId> allocate(Zeroed zeroed);
  // Returns a frame to the free list. Reclamation has made sure nothing can
  // still reach it.
  void release(FrameId frame);

  std::byte* data(FrameId frame) const { return mapping_.base() + frame.pool_offset(); }
  int fd() const { return fd_; }
  uint64_t capacity_frames() const { return capacity_frames_; }
  // Frames that allocate() can still hand out.
  uint64_t available_frames() const {
    return capacity_frames_ - next_fresh_.load(std::memory_order_relaxed) +
           free_count_.load(std::memory_order_relaxed);
  }
  bool free_list_empty() const { return free_count_.load(std::memory_order_relaxed) == 0; }
  uint64_t populated_frames() const { return populated_.load(std::memory_order_relaxed); }
  // The first frame never handed out: fresh frames go in index order.
  FrameId next_fresh() const { return FrameId(next_fresh_.load(std::memory_order_relaxed)); }
  // Backs `frames` frames from `first` (clamped to the pool) with host
  // memory now, on the caller's thread; contents are unchanged. What
  // Populate::kAhead does in the background, for a caller that wants it
  // done before it goes on (a benchmark's measured path).
  Result<void> populate_now(FrameId first, uint64_t frames);

 private:
  FramePool(int fd, HostMapping mapping, uint64_t capacity_frames, const FramePoolOptions& options);
  std::optional<FrameId> pop_free();
  void populate_loop();

  int fd_;
  HostMapping mapping_;
  uint64_t capacity_frames_;
  FramePoolOptions options_;

  // Lock-free free list (a Treiber stack over frame indices). head_ packs an
  // ABA tag (high 32 bits) with index + 1 (low 32 bits; 0 = empty).
  std::atomic<uint64_t> free_head_{0};
  std::atomic<uint64_t> free_count_{0};
  HostMapping free_next_;                // std::atomic<uint32_t> per frame: next index + 1
  std::atomic<uint64_t> next_fresh_{0};  // frames below it have been handed out once

  // Population ahead of next_fresh_, by populator_.
  std::atomic<uint64_t> populated_{0};
  std::mutex populate_mutex_;
  std::condition_variable populate_wanted_;
  bool stopping_ = false;  // guarded by populate_mutex_
  std::thread populator_;
};

}  // namespace vmfork
