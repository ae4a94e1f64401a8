// Reads a snapshot's recorded working set (vmm/snapshot/working_set.h) into
// the page cache of its restored clones, in the background, while they run:
// a clone that touches a chunk first reads it itself (the cache reads each
// chunk once, whoever asks first), so the prefetch never delays one.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "guestmm/page_cache.h"

namespace vmfork {

class WorkingSetPrefetch {
 public:
  // Starts reading `dir`'s working set, if it has one, into `cache`.
  WorkingSetPrefetch(std::shared_ptr<PageCache> cache, std::filesystem::path dir);
  // Stops at the next chunk and waits for the thread.
  ~WorkingSetPrefetch();
  WorkingSetPrefetch(const WorkingSetPrefetch&) = delete;
  WorkingSetPrefetch& operator=(const WorkingSetPrefetch&) = delete;

  // Chunks read so far by the prefetch (not those a clone read first).
  uint64_t chunks_read() const { return read_.load(std::memory_order_relaxed); }

 private:
  void run();

  const std::shared_ptr<PageCache> cache_;
  const std::filesystem::path dir_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> read_{0};
  std::thread thread_;  // last: it reads the members above
};

}  // namespace vmfork
