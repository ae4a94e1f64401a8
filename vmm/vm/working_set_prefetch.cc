#include "vmm/vm/working_set_prefetch.h"

#include <spdlog/spdlog.h>

#include "vmm/clock.h"
#include "vmm/snapshot/working_set.h"

namespace vmfork {

WorkingSetPrefetch::WorkingSetPrefetch(std::shared_ptr<PageCache> cache, std::filesystem::path dir)
    : cache_(std::move(cache)), dir_(std::move(dir)), thread_([this] { run(); }) {}

WorkingSetPrefetch::~WorkingSetPrefetch() {
  stop_.store(true, std::memory_order_relaxed);
  thread_.join();
}

void WorkingSetPrefetch::run() {
  Result<std::optional<std::vector<uint64_t>>> chunks =
      read_working_set(dir_, cache_->chunk_count());
  if (!chunks) {
    // Advice only: the clones read what they touch themselves.
    spdlog::warn("working set not prefetched: {}", chunks.error().message);
    return;
  }
  if (!*chunks) return;
  const uint64_t start = now_ns();
  for (uint64_t chunk : **chunks) {
    if (stop_.load(std::memory_order_relaxed)) break;
    if (Result<void> read = cache_->load(chunk); !read) {
      // The clone that touches it meets the same error and ends with it.
      spdlog::warn("working set prefetch stopped: {}", read.error().message);
      break;
    }
    read_.fetch_add(1, std::memory_order_relaxed);
  }
  spdlog::debug("working set prefetch: {} of {} chunk(s) in {:.1f} ms", read_.load(),
                (*chunks)->size(), static_cast<double>(now_ns() - start) / 1e6);
}

}  // namespace vmfork
