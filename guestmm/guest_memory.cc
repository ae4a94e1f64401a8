#include "guestmm/guest_memory.h"

#include "guestmm/page_cache.h"

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "guestmm/address_space.h"

namespace vmfork {

namespace {
// Below this many waiting frames, allocation does not bother reclaiming
// (a collect scans every participant).
constexpr uint64_t kCollectBatch = 256;
// Each attempt waits a little (the waiter yields now and then): a few
// thousand cover the time every vCPU takes to reach its next check.
constexpr int kCollectAttemptsWhenExhausted = 4096;
}  // namespace

Result<std::unique_ptr<GuestMemory>> GuestMemory::create(const GuestMemoryOptions& options) {
  FramePoolOptions pool_options;
  pool_options.capacity_bytes = options.pool_bytes;
  pool_options.populate = options.populate;
  Result<std::unique_ptr<FramePool>> pool = FramePool::create(pool_options);
  if (!pool) return pool.error();
  const uint64_t frames = (*pool)->capacity_frames();
  Result<FrameTable> table = FrameTable::create(frames);
  if (!table) return table.error();
  FramePool* raw_pool = pool->get();
  Result<Reclaimer> reclaimer =
      Reclaimer::create(frames, [raw_pool](FrameId frame, FrameKind) { raw_pool->release(frame); });
  if (!reclaimer) return reclaimer.error();
  return std::unique_ptr<GuestMemory>(
      new GuestMemory(std::move(*pool), std::move(*table), std::move(*reclaimer)));
}

GuestMemory::GuestMemory(std::unique_ptr<FramePool> pool, FrameTable frame_table,
                         Reclaimer reclaimer)
    : pool_(std::move(pool)),
      frame_table_(std::move(frame_table)),
      reclaimer_(std::move(reclaimer)) {}

GuestMemory::~GuestMemory() = default;

Result<std::unique_ptr<AddressSpace>> GuestMemory::create_space(std::string name,
                                                                uint64_t ram_bytes,
                                                                std::shared_ptr<PageCache> cache) {
  if (ram_bytes == 0 || ram_bytes % kPageSize != 0 || ram_bytes > (kMaxGfn + 1) * kPageSize) {
    return make_error(ErrorCode::kInvalidArgument,
                      "guest RAM must be a non-zero multiple of 4 KiB below 256 TiB");
  }
  if (cache && cache->ram_bytes() != ram_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a restored guest RAM must be the size of its page cache");
  }
  Result<FrameId> root = tree_.create_root();
  if (!root) return root.error();
  return std::unique_ptr<AddressSpace>(
      new AddressSpace(*this, std::move(name), ram_bytes, *root, std::move(cache)));
}

Result<FrameId> GuestMemory::allocate(FrameKind kind, Zeroed zeroed, Waiter& waiter) {
  if (pool_->free_list_empty() && reclaimer_.pending() >= kCollectBatch) reclaimer_.collect();
  Result<FrameId> frame = pool_->allocate(zeroed);
  // Exhausted, but frames are waiting for quiescence: keep collecting while
  // the other vCPUs pass quiescent points (and ours, through the waiter).
  for (int attempt = 0;
       !frame && reclaimer_.pending() > 0 && attempt < kCollectAttemptsWhenExhausted; ++attempt) {
    waiter.on_wait();
    reclaimer_.collect();
    frame = pool_->allocate(zeroed);
  }
  if (!frame) return frame;
  frame_table_.set_allocated(*frame);
  FrameKindCounts& counts = kind_counts_.local();
  (kind == FrameKind::kData ? counts.data : counts.table).fetch_add(1, std::memory_order_relaxed);
  return frame;
}

Result<FrameId> GuestMemory::allocate_data(Zeroed zeroed, Waiter& waiter) {
  return allocate(FrameKind::kData, zeroed, waiter);
}

Result<FrameId> GuestMemory::allocate_table(Waiter& waiter) {
  return allocate(FrameKind::kTable, Zeroed::kYes, waiter);
}

void GuestMemory::retire(FrameId frame, FrameKind kind) {
  FrameKindCounts& counts = kind_counts_.local();
  (kind == FrameKind::kData ? counts.data : counts.table).fetch_sub(1, std::memory_order_relaxed);
  reclaimer_.retire(frame, kind);
}

FrameCounts GuestMemory::frame_counts() const {
  FrameCounts counts;
  counts.capacity = pool_->capacity_frames();
  counts.free = pool_->available_frames();
  kind_counts_.for_each([&counts](const FrameKindCounts& shard) {
    counts.data += shard.data.load(std::memory_order_relaxed);
    counts.table += shard.table.load(std::memory_order_relaxed);
  });
  counts.reclaiming = reclaimer_.pending();
  return counts;
}

void GuestMemory::register_root(FrameId root) {
  std::lock_guard lock(roots_mutex_);
  roots_.insert(root);
}

void GuestMemory::unregister_root(FrameId root) {
  std::lock_guard lock(roots_mutex_);
  roots_.erase(roots_.find(root));
}

MemoryAccounting GuestMemory::account() const {
  MemoryAccounting result;
  result.frames = frame_counts();
  std::vector<bool> seen(pool_->capacity_frames());
  uint64_t distinct_data = 0;
  HostWalkGuard guard(reclaimer_);
  std::lock_guard lock(roots_mutex_);
  for (FrameId root : roots_) {
    const SpaceAccounting space = account_tree(*this, root);
    result.data_exclusive += space.data_exclusive;
    tree_.for_each_leaf(root, [&](Gfn, EptEntry entry) {
      if (!seen[entry.frame().index()]) {
        seen[entry.frame().index()] = true;
        ++distinct_data;
      }
    });
  }
  result.data_shared = distinct_data - result.data_exclusive;
  return result;
}

void GuestMemory::register_cache(const PageCache* cache) {
  std::lock_guard lock(roots_mutex_);
  caches_.insert(cache);
}

void GuestMemory::unregister_cache(const PageCache* cache) {
  std::lock_guard lock(roots_mutex_);
  caches_.erase(cache);
}

Result<void> GuestMemory::verify_references() const {
  std::unordered_map<uint64_t, uint64_t> expected;
  std::unordered_set<uint64_t> tables;
  std::unordered_set<uint64_t> data;
  // Counts the references held by each distinct table's entries once.
  auto visit = [&](auto& self, FrameId table, int level) -> void {
    if (!tables.insert(table.index()).second) return;
    std::atomic<uint64_t>* slots = entries(table);
    for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
      const EptEntry entry(slots[i].load(std::memory_order_acquire));
      if (!entry.present()) continue;
      ++expected[entry.frame().index()];
      if (level == 1) {
        data.insert(entry.frame().index());
      } else {
        self(self, entry.frame(), level - 1);
      }
    }
  };
  HostWalkGuard guard(reclaimer_);
  std::lock_guard lock(roots_mutex_);
  for (FrameId root : roots_) {
    ++expected[root.index()];
    visit(visit, root, kEptLevels);
  }
  for (const PageCache* cache : caches_) {
    for (FrameId frame : cache->held_frames()) {
      ++expected[frame.index()];
      data.insert(frame.index());
    }
  }
  for (const auto& [index, references] : expected) {
    const uint64_t actual = refcount(FrameId(index));
    if (actual != references) {
      return make_error(ErrorCode::kInvalidArgument, "frame " + std::to_string(index) +
                                                         " has refcount " + std::to_string(actual) +
                                                         " but " + std::to_string(references) +
                                                         " references");
    }
  }
  const FrameCounts counts = frame_counts();
  if (counts.table != tables.size() || counts.data != data.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "counted " + std::to_string(counts.table) + " tables and " +
                          std::to_string(counts.data) + " data frames, reached " +
                          std::to_string(tables.size()) + " and " + std::to_string(data.size()));
  }
  if (counts.free + counts.data + counts.table + counts.reclaiming != counts.capacity) {
    return make_error(ErrorCode::kInvalidArgument, "frame states do not add up to the capacity");
  }
  return Ok{};
}

SpaceAccounting account_tree(const GuestMemory& memory, FrameId root) {
  SpaceAccounting result;
  auto visit = [&](auto& self, FrameId frame, int level, bool path_exclusive) -> void {
    const bool exclusive = path_exclusive && memory.refcount(frame) == 1;
    if (level == 0) {
      ++(exclusive ? result.data_exclusive : result.data_shared);
      return;
    }
    ++(exclusive ? result.tables_exclusive : result.tables_shared);
    std::atomic<uint64_t>* slots = memory.entries(frame);
    for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
      const EptEntry entry(slots[i].load(std::memory_order_acquire));
      if (entry.present()) self(self, entry.frame(), level - 1, exclusive);
    }
  };
  visit(visit, root, kEptLevels, true);
  return result;
}

}  // namespace vmfork
