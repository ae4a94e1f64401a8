// The frames of a restored guest RAM (DESIGN section 7, lazy restore): the
// pages of a PageSource, read one chunk at a time on first touch, and shared
// by every address space restored from it. A page a restored space only
// reads maps the cache's frame read-only; its first write copies it, so N
// clones cost the pages they touched once plus what each one wrote.
//
// The cache holds one reference on each frame it loaded (dropped when the
// last space and snapshot using it is gone), so a leaf that maps one always
// sees a refcount of at least 2: no COW fault upgrades a cache frame in place.
//
// Creating one is O(1) in RAM size: its tables are reserved address space
// that the host zero-fills on first touch.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/types.h"
#include "base/waiter.h"
#include "guestmm/page_source.h"

namespace vmfork {

class GuestMemory;

class PageCache {
 public:
  // `origin` names the source for the spaces that restore from it (the
  // snapshot directory, which a diff snapshot records as its parent).
  static Result<std::shared_ptr<PageCache>> create(GuestMemory& memory,
                                                   std::shared_ptr<const PageSource> source,
                                                   std::string origin);
  ~PageCache();
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  uint64_t ram_bytes() const { return ram_bytes_; }
  const std::string& origin() const { return origin_; }
  const PageSource& source() const { return *source_; }

  // The frame holding `gfn`'s data, its chunk read first if no one has;
  // none when the source has no data for it (a zero page). While another
  // thread reads the chunk, `waiter` spins (a vCPU keeps servicing its
  // shootdowns): call it where no frame pointer is held. An error (the
  // source's: I/O, checksum) leaves the chunk unread, to be tried again.
  Result<std::optional<FrameId>> frame(Gfn gfn, Waiter& waiter);
  // Whether `frame` is the cache's frame of `gfn`, loaded: the page is still
  // the source's (a diff snapshot leaves it out). No I/O.
  bool holds(Gfn gfn, FrameId frame) const;

  // Reads `chunk` now if no one has (prefetch, eager restore).
  Result<void> load(uint64_t chunk, Waiter& waiter = HostWaiter::instance());
  // Every chunk with data: an eager restore.
  Result<void> load_all(Waiter& waiter = HostWaiter::instance());
  uint64_t chunk_count() const { return chunks_; }
  // The chunks read so far, in the order they were (a working set).
  std::vector<uint64_t> loaded_chunks() const;
  // Frames the cache holds a reference on.
  uint64_t frames() const { return frames_.load(std::memory_order_relaxed); }
  // Which they are (GuestMemory::verify_references counts them).
  std::vector<FrameId> held_frames() const;

 private:
  enum ChunkState : uint8_t { kUnread = 0, kReading = 1, kRead = 2 };

  PageCache(GuestMemory& memory, std::shared_ptr<const PageSource> source, std::string origin,
            std::atomic<uint64_t>* slots, std::atomic<uint8_t>* states, uint64_t chunks);
  Result<void> read_chunk(uint64_t chunk, Waiter& waiter);

  GuestMemory& memory_;
  const std::shared_ptr<const PageSource> source_;
  const std::string origin_;
  const uint64_t ram_bytes_;
  // Per page: 0, or the frame's index + 1. Written before its chunk's
  // state becomes kRead (release), read after seeing it (acquire).
  std::atomic<uint64_t>* const slots_;
  std::atomic<uint8_t>* const states_;  // per chunk
  const uint64_t chunks_;
  std::atomic<uint64_t> frames_{0};
  mutable std::mutex loaded_mutex_;  // never taken on a fault's fast path
  std::vector<uint64_t> loaded_;     // guarded by loaded_mutex_
};

}  // namespace vmfork
