#include "guestmm/frame_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace vmfork {

namespace {
constexpr uint64_t kIndexMask = 0xffff'ffff;
constexpr uint64_t kPopulateChunkFrames = (uint64_t{2} << 20) / kPageSize;
}  // namespace

Result<std::unique_ptr<FramePool>> FramePool::create(const FramePoolOptions& options) {
  const uint64_t frames = options.capacity_bytes / kPageSize;
  if (frames == 0 || frames >= kIndexMask) {
    return make_error(ErrorCode::kInvalidArgument,
                      "frame pool capacity must be between 4 KiB and 16 TiB");
  }
  const int fd = memfd_create("vmfork-frames", MFD_CLOEXEC);
  if (fd < 0)
    return make_error(ErrorCode::kSystem, std::string("memfd_create: ") + strerror(errno));
  if (ftruncate(fd, static_cast<off_t>(frames * kPageSize)) != 0) {
    const int saved = errno;
    close(fd);
    return make_error(ErrorCode::kSystem, std::string("ftruncate frame pool: ") + strerror(saved));
  }
  Result<HostMapping> mapping = HostMapping::shared_file(fd, frames * kPageSize);
  if (!mapping) {
    close(fd);
    return mapping.error();
  }
  std::unique_ptr<FramePool> pool(new FramePool(fd, std::move(*mapping), frames, options));
  Result<HostMapping> next = HostMapping::anonymous(frames * sizeof(uint32_t));
  if (!next) return next.error();
  pool->free_next_ = std::move(*next);
  if (options.populate == Populate::kAhead) {
    pool->populator_ = std::thread([p = pool.get()] { p->populate_loop(); });
  }
  return pool;
}

FramePool::FramePool(int fd, HostMapping mapping, uint64_t capacity_frames,
                     const FramePoolOptions& options)
    : fd_(fd), mapping_(std::move(mapping)), capacity_frames_(capacity_frames), options_(options) {}

FramePool::~FramePool() {
  if (populator_.joinable()) {
    {
      std::lock_guard lock(populate_mutex_);
      stopping_ = true;
    }
    populate_wanted_.notify_all();
    populator_.join();
  }
  mapping_ = HostMapping();
  close(fd_);
}

std::optional<FrameId> FramePool::pop_free() {
  auto* next = free_next_.as<std::atomic<uint32_t>>();
  uint64_t head = free_head_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t index_plus_one = head & kIndexMask;
    if (index_plus_one == 0) return std::nullopt;
    // Reading a stale `next` is harmless: the tag makes the CAS fail.
    const uint64_t successor = next[index_plus_one - 1].load(std::memory_order_relaxed);
    const uint64_t tagged = ((head >> 32) + 1) << 32 | successor;
    if (free_head_.compare_exchange_weak(head, tagged, std::memory_order_acquire,
                                         std::memory_order_acquire)) {
      free_count_.fetch_sub(1, std::memory_order_relaxed);
      return FrameId(index_plus_one - 1);
    }
  }
}

void FramePool::release(FrameId frame) {
  auto* next = free_next_.as<std::atomic<uint32_t>>();
  uint64_t head = free_head_.load(std::memory_order_relaxed);
  for (;;) {
    next[frame.index()].store(static_cast<uint32_t>(head & kIndexMask), std::memory_order_relaxed);
    const uint64_t tagged = ((head >> 32) + 1) << 32 | (frame.index() + 1);
    if (free_head_.compare_exchange_weak(head, tagged, std::memory_order_release,
                                         std::memory_order_relaxed)) {
      break;
    }
  }
  free_count_.fetch_add(1, std::memory_order_relaxed);
}

Result<FrameId> FramePool::allocate(Zeroed zeroed) {
  if (std::optional<FrameId> recycled = pop_free()) {
    if (zeroed == Zeroed::kYes) std::memset(data(*recycled), 0, kPageSize);
    return *recycled;
  }
  const uint64_t index = next_fresh_.fetch_add(1, std::memory_order_relaxed);
  if (index >= capacity_frames_) {
    next_fresh_.fetch_sub(1, std::memory_order_relaxed);
    return make_error(ErrorCode::kOutOfFrames,
                      "frame pool exhausted (" + std::to_string(capacity_frames_) + " frames)");
  }
  if (populator_.joinable() && index % kPopulateChunkFrames == 0) {
    populate_wanted_.notify_one();  // once per chunk: the populator keeps ahead
  }
  // A fresh frame has never been written: the memfd gives zeros.
  return FrameId(index);
}

Result<void> FramePool::populate_now(FrameId first, uint64_t frames) {
  if (first.index() >= capacity_frames_) return Ok{};
  frames = std::min(frames, capacity_frames_ - first.index());
  std::byte* begin = data(first);
  const size_t bytes = frames * kPageSize;
  if (madvise(begin, bytes, MADV_POPULATE_WRITE) == 0) return Ok{};
  if (errno != EINVAL) {
    return make_error(ErrorCode::kSystem, std::string("MADV_POPULATE_WRITE of the frame pool: ") +
                                              std::strerror(errno));
  }
  // Older kernels: write every page without changing it (a read would map
  // the shared zero page of a hole). Frames may be in use: an atomic OR of 0.
  for (size_t offset = 0; offset < bytes; offset += kPageSize) {
    reinterpret_cast<std::atomic<uint8_t>*>(begin + offset)->fetch_or(0, std::memory_order_relaxed);
  }
  return Ok{};
}

void FramePool::populate_loop() {
  const uint64_t ahead = options_.populate_ahead_bytes / kPageSize;
  std::unique_lock lock(populate_mutex_);
  while (!stopping_) {
    const uint64_t target =
        std::min(capacity_frames_, next_fresh_.load(std::memory_order_relaxed) + ahead);
    const uint64_t populated = populated_.load(std::memory_order_relaxed);
    if (populated >= target) {
      populate_wanted_.wait_for(lock, std::chrono::milliseconds(50));
      continue;
    }
    const uint64_t end = std::min(target, populated + kPopulateChunkFrames);
    lock.unlock();
    // Out of host memory: the frames fault when first written instead.
    (void)populate_now(FrameId(populated), end - populated);
    populated_.store(end, std::memory_order_relaxed);
    lock.lock();
  }
}

}  // namespace vmfork
