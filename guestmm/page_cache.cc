#include "guestmm/page_cache.h"

#include <sys/mman.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "ept/ept_entry.h"
#include "guestmm/guest_memory.h"

namespace vmfork {

namespace {

// Reserved, zero-filled by the host on first touch: O(1) to create whatever
// the RAM size, and only the chunks restored spaces touch cost memory.
template <class T>
T* reserve_zeroed(uint64_t count) {
  void* mapping = mmap(nullptr, count * sizeof(T), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return mapping == MAP_FAILED ? nullptr : static_cast<T*>(mapping);
}

}  // namespace

Result<std::shared_ptr<PageCache>> PageCache::create(GuestMemory& memory,
                                                     std::shared_ptr<const PageSource> source,
                                                     std::string origin) {
  const uint64_t ram_bytes = source->ram_bytes();
  if (ram_bytes == 0 || ram_bytes % PageSource::kChunkBytes != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      origin + ": RAM size is not a whole number of 64 KiB chunks");
  }
  const uint64_t chunks = ram_bytes / PageSource::kChunkBytes;
  auto* slots = reserve_zeroed<std::atomic<uint64_t>>(ram_bytes / kPageSize);
  auto* states = reserve_zeroed<std::atomic<uint8_t>>(chunks);
  if (slots == nullptr || states == nullptr) {
    const int saved = errno;
    if (slots != nullptr) munmap(slots, ram_bytes / kPageSize * sizeof(*slots));
    if (states != nullptr) munmap(states, chunks);
    return make_error(ErrorCode::kSystem,
                      origin + ": cannot reserve the page cache: " + std::strerror(saved));
  }
  return std::shared_ptr<PageCache>(
      new PageCache(memory, std::move(source), std::move(origin), slots, states, chunks));
}

PageCache::PageCache(GuestMemory& memory, std::shared_ptr<const PageSource> source,
                     std::string origin, std::atomic<uint64_t>* slots, std::atomic<uint8_t>* states,
                     uint64_t chunks)
    : memory_(memory),
      source_(std::move(source)),
      origin_(std::move(origin)),
      ram_bytes_(source_->ram_bytes()),
      slots_(slots),
      states_(states),
      chunks_(chunks) {
  memory_.register_cache(this);
}

PageCache::~PageCache() {
  memory_.unregister_cache(this);
  // Every space and snapshot that mapped our frames is gone: ours are the
  // last references.
  for (uint64_t chunk : loaded_) {
    for (uint64_t page = 0; page < PageSource::kChunkPages; ++page) {
      const uint64_t slot = slots_[chunk * PageSource::kChunkPages + page].load();
      if (slot != 0)
        memory_.tree().release_entry(EptEntry::leaf(FrameId(slot - 1), Access::kAll), 1);
    }
  }
  munmap(slots_, ram_bytes_ / kPageSize * sizeof(*slots_));
  munmap(states_, chunks_);
}

Result<std::optional<FrameId>> PageCache::frame(Gfn gfn, Waiter& waiter) {
  if (gfn.value() >= ram_bytes_ / kPageSize) {
    return make_error(ErrorCode::kOutsideRam, origin_ + ": page outside the restored RAM");
  }
  const uint64_t chunk = gfn.value() / PageSource::kChunkPages;
  if (states_[chunk].load(std::memory_order_acquire) != kRead) {
    if (Result<void> read = load(chunk, waiter); !read) return read.error();
  }
  const uint64_t slot = slots_[gfn.value()].load(std::memory_order_relaxed);
  if (slot == 0) return std::optional<FrameId>();
  return std::optional<FrameId>(FrameId(slot - 1));
}

bool PageCache::holds(Gfn gfn, FrameId frame) const {
  if (gfn.value() >= ram_bytes_ / kPageSize) return false;
  const uint64_t chunk = gfn.value() / PageSource::kChunkPages;
  if (states_[chunk].load(std::memory_order_acquire) != kRead) return false;
  return slots_[gfn.value()].load(std::memory_order_relaxed) == frame.index() + 1;
}

Result<void> PageCache::load(uint64_t chunk, Waiter& waiter) {
  if (chunk >= chunks_) {
    return make_error(ErrorCode::kOutsideRam, origin_ + ": chunk outside the restored RAM");
  }
  std::atomic<uint8_t>& state = states_[chunk];
  for (;;) {
    uint8_t seen = state.load(std::memory_order_acquire);
    if (seen == kRead) return Ok{};
    if (seen == kUnread &&
        state.compare_exchange_strong(seen, kReading, std::memory_order_acquire)) {
      Result<void> read = read_chunk(chunk, waiter);
      // Published with the slots (release), or unread again for a retry.
      state.store(read ? kRead : kUnread, std::memory_order_release);
      return read;
    }
    // Another thread is reading it.
    waiter.on_wait();
  }
}

Result<void> PageCache::read_chunk(uint64_t chunk, Waiter& waiter) {
  const uint16_t with_data = source_->pages_with_data(chunk);
  if (with_data == 0) {
    std::lock_guard lock(loaded_mutex_);
    loaded_.push_back(chunk);
    return Ok{};
  }
  std::array<FrameId, PageSource::kChunkPages> frames{};
  std::array<std::byte*, PageSource::kChunkPages> pages{};
  uint64_t allocated = 0;
  auto give_back = [&] {
    for (uint64_t page = 0; page < PageSource::kChunkPages; ++page) {
      if (pages[page] != nullptr) {
        memory_.tree().release_entry(EptEntry::leaf(frames[page], Access::kAll), 1);
      }
    }
  };
  for (uint64_t page = 0; page < PageSource::kChunkPages; ++page) {
    if ((with_data >> page & 1) == 0) continue;
    Result<FrameId> frame = memory_.allocate_data(Zeroed::kNo, waiter);
    if (!frame) {
      give_back();
      return frame.error();
    }
    frames[page] = *frame;
    pages[page] = memory_.frame_data(*frame);
    ++allocated;
  }
  if (Result<void> read = source_->read_chunk(chunk, pages); !read) {
    give_back();
    return read;
  }
  const uint64_t first = chunk * PageSource::kChunkPages;
  for (uint64_t page = 0; page < PageSource::kChunkPages; ++page) {
    if (pages[page] != nullptr) {
      slots_[first + page].store(frames[page].index() + 1, std::memory_order_relaxed);
    }
  }
  frames_.fetch_add(allocated, std::memory_order_relaxed);
  std::lock_guard lock(loaded_mutex_);
  loaded_.push_back(chunk);
  return Ok{};
}

Result<void> PageCache::load_all(Waiter& waiter) {
  for (uint64_t chunk = 0; chunk < chunks_; ++chunk) {
    if (source_->pages_with_data(chunk) == 0) continue;
    if (Result<void> read = load(chunk, waiter); !read) return read;
  }
  return Ok{};
}

std::vector<FrameId> PageCache::held_frames() const {
  std::lock_guard lock(loaded_mutex_);
  std::vector<FrameId> frames;
  for (uint64_t chunk : loaded_) {
    for (uint64_t page = 0; page < PageSource::kChunkPages; ++page) {
      const uint64_t slot =
          slots_[chunk * PageSource::kChunkPages + page].load(std::memory_order_relaxed);
      if (slot != 0) frames.emplace_back(slot - 1);
    }
  }
  return frames;
}

std::vector<uint64_t> PageCache::loaded_chunks() const {
  std::lock_guard lock(loaded_mutex_);
  return loaded_;
}

}  // namespace vmfork
