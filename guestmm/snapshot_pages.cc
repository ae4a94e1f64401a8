// The pages a snapshot file stores (MemorySnapshot::for_each_page).
#include <algorithm>
#include <utility>
#include <vector>

#include "guestmm/guest_memory.h"
#include "guestmm/page_cache.h"
#include "guestmm/snapshot.h"

namespace vmfork {

namespace {

bool all_zero(const std::byte* page) {
  const std::byte* end = page + kPageSize;
  return std::find_if(page, end, [](std::byte b) { return b != std::byte{0}; }) == end;
}

}  // namespace

Result<void> MemorySnapshot::for_each_page(PagesToStore which, const VisitStoredPage& visit) const {
  // The mapped pages. Our tables hold their frames until we are gone, and
  // nobody writes below a snapshot's root: what we read stays frozen.
  std::vector<std::pair<Gfn, FrameId>> mapped;
  {
    HostWalkGuard guard(memory_.reclaimer());
    memory_.tree().for_each_leaf(
        root_, [&mapped](Gfn gfn, EptEntry entry) { mapped.emplace_back(gfn, entry.frame()); });
  }
  if (!cache_) {
    for (const auto& [gfn, frame] : mapped) {
      const std::byte* page = memory_.frame_data(frame);
      if (all_zero(page)) continue;  // a hole reads as zero
      if (Result<void> visited = visit(gfn, page); !visited) return visited;
    }
    return Ok{};
  }

  const PageSource& source = cache_->source();
  size_t next = 0;
  for (uint64_t chunk = 0; chunk < cache_->chunk_count(); ++chunk) {
    const uint64_t first = chunk * PageSource::kChunkPages;
    const uint16_t with_data = source.pages_with_data(chunk);
    const bool mapped_here =
        next < mapped.size() && mapped[next].first.value() < first + PageSource::kChunkPages;
    if (!mapped_here && (with_data == 0 || which == PagesToStore::kNotShared)) continue;
    for (uint64_t page = 0; page < PageSource::kChunkPages; ++page) {
      const Gfn gfn(first + page);
      const bool source_has_it = (with_data >> page & 1) != 0;
      const std::byte* data = nullptr;
      if (next < mapped.size() && mapped[next].first == gfn) {
        const FrameId frame = mapped[next++].second;
        // Still the source's page: a diff leaves it to the parent.
        if (which == PagesToStore::kNotShared && cache_->holds(gfn, frame)) continue;
        data = memory_.frame_data(frame);
        // A zero page reads as a hole unless a parent's page would show
        // through it.
        const bool parent_shows = which == PagesToStore::kNotShared && source_has_it;
        if (!parent_shows && all_zero(data)) continue;
      } else {
        if (which == PagesToStore::kNotShared || !source_has_it) continue;
        Result<std::optional<FrameId>> restored = cache_->frame(gfn, HostWaiter::instance());
        if (!restored) return restored.error();
        if (!*restored) continue;
        data = memory_.frame_data(**restored);
      }
      if (Result<void> visited = visit(gfn, data); !visited) return visited;
    }
  }
  return Ok{};
}

}  // namespace vmfork
