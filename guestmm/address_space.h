// A guest address space: one VM's guest-physical memory, an EPT root in the
// shared frame pool. Cloning it or snapshotting it is O(1) in its size;
// writes to shared pages run the COW protocol of DESIGN section 4.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "base/result.h"
#include "base/types.h"
#include "base/waiter.h"
#include "ept/ept_entry.h"
#include "ept/shootdown.h"
#include "guestmm/accounting.h"
#include "guestmm/per_thread.h"

namespace vmfork {

class GuestMemory;
class MemorySnapshot;
class PageCache;

// What a fault resolved: the frame a guest page maps, and what its leaf
// allows (the path above it is exclusive after a fault, so the walk allows
// the same).
struct Resolved {
  FrameId frame;
  Access allowed = Access::kNone;
};

class AddressSpace {
 public:
  // Drops the root's reference. Every vCPU of the space must have left.
  ~AddressSpace();
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  const std::string& name() const { return name_; }
  uint64_t ram_bytes() const { return ram_bytes_; }
  Eptp eptp() const { return Eptp::for_root(root_); }
  FrameId root() const { return root_; }
  GuestMemory& memory() const { return memory_; }
  // The vCPUs that may cache this space's translations.
  ShootdownDomain& vcpus() { return vcpus_; }

  // The restored RAM this space's untouched pages come from (lazy
  // restore), or null: untouched pages are zero.
  const std::shared_ptr<PageCache>& page_cache() const { return cache_; }

  // Resolves an access the EPT walk refused: a page never touched gets a
  // zeroed frame of its own (in a restored space: a read maps the page
  // cache's frame read-only, a write a copy of it); a write to a read-only
  // page runs the COW protocol. `waiter` is the faulting vCPU's (it keeps servicing
  // shootdowns while it waits) or the host's.
  // Returns what the leaf of `gpa` maps and allows once `access` is
  // allowed, which stays so until the next fault of this space on it (a
  // caller that serializes this space's faults, as the kvm fault service
  // does, may map it without walking again).
  Result<Resolved> handle_fault(Gpa gpa, Access access, Waiter& waiter);

  // Host-side access through the EPT, for loaders and devices. Pages never
  // touched read as zero; writes run the fault protocol as a vCPU would.
  Result<void> read(Gpa gpa, std::span<std::byte> out) const;
  Result<void> write(Gpa gpa, std::span<const std::byte> data);
  // Backs [gpa, gpa + bytes) with frames of its own now instead of on first
  // touch. The frames are zero.
  Result<void> populate(Gpa gpa, uint64_t bytes);

  // A running copy of this space (DESIGN section 3 clone). The caller has
  // stopped this space's vCPUs at an instruction boundary with no fault in
  // flight; they flush before they run again. `waiter` is the caller's: a vCPU of this
  // space that takes the snapshot itself services its own flush.
  Result<std::unique_ptr<AddressSpace>> clone(std::string name,
                                              Waiter& waiter = HostWaiter::instance());
  // An immutable copy (DESIGN section 7), under the same conditions.
  Result<std::unique_ptr<MemorySnapshot>> snapshot(std::string name,
                                                   Waiter& waiter = HostWaiter::instance());

  SpaceAccounting account() const;
  FaultCounters counters() const;

 private:
  friend class GuestMemory;
  friend class MemorySnapshot;
  AddressSpace(GuestMemory& memory, std::string name, uint64_t ram_bytes, FrameId root,
               std::shared_ptr<PageCache> cache);

  Result<void> check_range(Gpa gpa, uint64_t bytes) const;
  Result<Resolved> handle_write_fault(Gfn gfn, std::optional<FrameId> restored, Waiter& waiter);
  // In a restored space, the page cache's frame for `gfn` while `gfn` is
  // not mapped (read from the source first if need be); none otherwise, or
  // when the source has no data there. Holds no frame pointer across its
  // waits, so it is called first in a fault.
  Result<std::optional<FrameId>> restored_frame(Gfn gfn, Waiter& waiter) const;
  // A first touch's frame: a copy of the restored page, or zeroed.
  Result<FrameId> first_frame(std::optional<FrameId> restored, Waiter& waiter);
  // The read-only leaf that maps the page cache's frame (a reference taken).
  EptEntry shared_restored_leaf(FrameId restored);
  // Flushes every vCPU after the root lost W (clone and snapshot).
  void flush_vcpus(Waiter& waiter);
  // The data frame that backs `gfn` for `access`, faulting it in if needed.
  // `waiter` passes quiescent points only where no frame pointer is held.
  Result<FrameId> frame_for(Gfn gfn, Access access, Waiter& waiter);

  GuestMemory& memory_;
  const std::string name_;
  const uint64_t ram_bytes_;
  const std::shared_ptr<PageCache> cache_;  // outlives root_'s frames that are its
  const FrameId root_;                      // one reference, ours; never shared
  ShootdownDomain vcpus_;
  // Faults being served (debug builds count them, to check that clone and
  // snapshot are only taken with none in flight, as DESIGN section 7 says).
  std::atomic<int> faults_in_flight_{0};

  struct Counters {
    std::atomic<uint64_t> faults{0};
    std::atomic<uint64_t> demand_zero{0};
    std::atomic<uint64_t> restored{0};
    std::atomic<uint64_t> copies{0};
    std::atomic<uint64_t> in_place{0};
    std::atomic<uint64_t> shootdowns{0};
    std::atomic<uint64_t> already_resolved{0};
  };
  // Bumped by the faulting thread's shard: count(&Counters::copies).
  void count(std::atomic<uint64_t> Counters::*counter) {
    (counters_.local().*counter).fetch_add(1, std::memory_order_relaxed);
  }
  PerThread<Counters> counters_;
};

}  // namespace vmfork
