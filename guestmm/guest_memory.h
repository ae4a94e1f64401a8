// The guest memory manager: the frame pool, the frame table, reclamation and
// the EPT tree operations over them, shared by every VM of the monitor.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "ept/ept_tree.h"
#include "ept/table_memory.h"
#include "guestmm/accounting.h"
#include "guestmm/frame_pool.h"
#include "guestmm/frame_table.h"
#include "guestmm/per_thread.h"
#include "guestmm/reclaimer.h"

namespace vmfork {

class AddressSpace;
class PageCache;

struct GuestMemoryOptions {
  uint64_t pool_bytes = uint64_t{1} << 30;
  Populate populate = Populate::kAhead;
};

class GuestMemory final : public TableMemory {
 public:
  static Result<std::unique_ptr<GuestMemory>> create(const GuestMemoryOptions& options);
  ~GuestMemory() override;

  // A guest RAM of `ram_bytes`, every page not present until first touched:
  // then zero, or, restored from `cache` (whose RAM must be the same size),
  // the cache's page.
  Result<std::unique_ptr<AddressSpace>> create_space(std::string name, uint64_t ram_bytes,
                                                     std::shared_ptr<PageCache> cache = nullptr);

  // A data frame for one holder (refcount 1).
  // On exhaustion it keeps reclaiming while that makes progress; `waiter`
  // (the faulting vCPU's) passes quiescent points meanwhile.
  Result<FrameId> allocate_data(Zeroed zeroed, Waiter& waiter = HostWaiter::instance());
  std::byte* frame_data(FrameId frame) const { return pool_->data(frame); }

  EptTree& tree() { return tree_; }
  FrameTable& frame_table() { return frame_table_; }
  Reclaimer& reclaimer() { return reclaimer_; }
  FramePool& pool() { return *pool_; }

  // Exact at all times.
  FrameCounts frame_counts() const;
  // By walking every live root; exact when no fault is in flight.
  MemoryAccounting account() const;
  // Checks that every frame's count equals the references held on it (one per
  // present entry in a live table, one per root holder) and that the global
  // counts match what the live roots reach. For tests; needs quiescence.
  Result<void> verify_references() const;

  // Roots held by address spaces and snapshots, for the walks above.
  void register_root(FrameId root);
  void unregister_root(FrameId root);
  // Page caches, whose frames hold a reference of the cache's own.
  void register_cache(const PageCache* cache);
  void unregister_cache(const PageCache* cache);

  // TableMemory.
  std::atomic<uint64_t>* entries(FrameId table) const override {
    return reinterpret_cast<std::atomic<uint64_t>*>(pool_->data(table));
  }
  Result<FrameId> allocate_table(Waiter& waiter) override;
  void get(FrameId frame) override { frame_table_.get(frame); }
  bool put(FrameId frame) override { return frame_table_.put(frame); }
  uint64_t refcount(FrameId frame) const override { return frame_table_.refcount(frame); }
  void retire(FrameId frame, FrameKind kind) override;
  void lock(FrameId frame, Waiter& waiter) override { frame_table_.lock(frame, waiter); }
  void unlock(FrameId frame) override { frame_table_.unlock(frame); }

 private:
  GuestMemory(std::unique_ptr<FramePool> pool, FrameTable frame_table, Reclaimer reclaimer);
  Result<FrameId> allocate(FrameKind kind, Zeroed zeroed, Waiter& waiter);

  std::unique_ptr<FramePool> pool_;
  FrameTable frame_table_;
  mutable Reclaimer reclaimer_;  // mutable: const walks join it (HostWalkGuard)
  EptTree tree_{*this};
  // Allocated minus released, per thread (a shard may wrap below zero; the
  // sum modulo 2^64 is exact).
  struct FrameKindCounts {
    std::atomic<uint64_t> data{0};
    std::atomic<uint64_t> table{0};
  };
  PerThread<FrameKindCounts> kind_counts_;

  mutable std::mutex roots_mutex_;     // never taken on a fault path
  std::multiset<FrameId> roots_;       // guarded by roots_mutex_
  std::set<const PageCache*> caches_;  // guarded by roots_mutex_
};

// What the tree rooted at `root` reaches, exclusive or shared.
SpaceAccounting account_tree(const GuestMemory& memory, FrameId root);

}  // namespace vmfork
