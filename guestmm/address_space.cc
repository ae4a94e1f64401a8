#include "guestmm/address_space.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"

namespace vmfork {

AddressSpace::AddressSpace(GuestMemory& memory, std::string name, uint64_t ram_bytes, FrameId root,
                           std::shared_ptr<PageCache> cache)
    : memory_(memory),
      name_(std::move(name)),
      ram_bytes_(ram_bytes),
      cache_(std::move(cache)),
      root_(root) {
  memory_.register_root(root_);
}

AddressSpace::~AddressSpace() {
  memory_.unregister_root(root_);
  memory_.tree().release_root(root_);
}

Result<void> AddressSpace::check_range(Gpa gpa, uint64_t bytes) const {
  if (gpa.value() > ram_bytes_ || bytes > ram_bytes_ - gpa.value()) {
    return make_error(ErrorCode::kOutsideRam, "guest-physical range outside the RAM of " + name_);
  }
  return Ok{};
}

Result<FrameId> AddressSpace::frame_for(Gfn gfn, Access access, Waiter& waiter) {
  for (;;) {
    const WalkResult walk = memory_.tree().walk(root_, gfn, access);
    if (walk.ok()) return walk.frame;
    if (walk.kind == WalkResult::Kind::kMisconfiguration) {
      return make_error(ErrorCode::kMisconfigured, "EPT misconfiguration in " + name_);
    }
    if (Result<Resolved> fixed = handle_fault(gfn.gpa(), access, waiter); !fixed) {
      return fixed.error();
    }
  }
}

Result<void> AddressSpace::read(Gpa gpa, std::span<std::byte> out) const {
  if (Result<void> in_range = check_range(gpa, out.size()); !in_range) return in_range;
  HostWalkGuard guard(memory_.reclaimer());
  size_t done = 0;
  while (done < out.size()) {
    const Gpa at = gpa + done;
    const size_t chunk = std::min<size_t>(out.size() - done, kPageSize - at.page_offset());
    const WalkResult walk = memory_.tree().walk(root_, at.gfn(), Access::kRead);
    if (walk.ok()) {
      std::memcpy(out.data() + done, memory_.frame_data(walk.frame) + at.page_offset(), chunk);
    } else if (walk.kind == WalkResult::Kind::kMisconfiguration) {
      return make_error(ErrorCode::kMisconfigured, "EPT misconfiguration in " + name_);
    } else {
      // Never touched: zero, or the restored page.
      Result<std::optional<FrameId>> restored = restored_frame(at.gfn(), guard);
      if (!restored) return restored.error();
      if (*restored) {
        std::memcpy(out.data() + done, memory_.frame_data(**restored) + at.page_offset(), chunk);
      } else {
        std::memset(out.data() + done, 0, chunk);
      }
    }
    done += chunk;
  }
  return Ok{};
}

Result<void> AddressSpace::write(Gpa gpa, std::span<const std::byte> data) {
  if (Result<void> in_range = check_range(gpa, data.size()); !in_range) return in_range;
  HostWalkGuard guard(memory_.reclaimer());
  size_t done = 0;
  while (done < data.size()) {
    const Gpa at = gpa + done;
    const size_t chunk = std::min<size_t>(data.size() - done, kPageSize - at.page_offset());
    Result<FrameId> frame = frame_for(at.gfn(), Access::kWrite, guard);
    if (!frame) return frame.error();
    std::memcpy(memory_.frame_data(*frame) + at.page_offset(), data.data() + done, chunk);
    done += chunk;
  }
  return Ok{};
}

Result<void> AddressSpace::populate(Gpa gpa, uint64_t bytes) {
  if (Result<void> in_range = check_range(gpa, bytes); !in_range) return in_range;
  if (bytes == 0) return Ok{};
  const uint64_t first = gpa.gfn().value();
  const uint64_t end = (gpa.value() + bytes + kPageSize - 1) >> kPageShift;
  for (uint64_t gfn = first; gfn < end; ++gfn) {
    Result<FrameId> frame = memory_.allocate_data(Zeroed::kYes);
    if (!frame) return frame.error();
    Result<void> mapped =
        memory_.tree().map(root_, Gfn(gfn), *frame, Access::kAll, HostWaiter::instance());
    if (!mapped) {
      memory_.tree().release_entry(EptEntry::leaf(*frame, Access::kAll), 1);
      if (mapped.error().code != ErrorCode::kAlreadyMapped) return mapped;
    }
  }
  return Ok{};
}

void AddressSpace::flush_vcpus(Waiter& waiter) {
  assert(faults_in_flight_.load() == 0 && "clone or snapshot with a fault in flight");
  // Clearing W in our root entries made every writable translation our vCPUs
  // cached stale. They are stopped, so this completes at once and each one
  // flushes when it resumes.
  ShootdownBatch batch = ShootdownBatch::single_context(vcpus_, eptp(), waiter);
  (void)batch.wait(waiter);
  count(&Counters::shootdowns);
}

Result<std::unique_ptr<AddressSpace>> AddressSpace::clone(std::string name, Waiter& waiter) {
  Result<FrameId> root = memory_.tree().clone(root_, waiter);
  if (!root) return root.error();
  flush_vcpus(waiter);
  return std::unique_ptr<AddressSpace>(
      new AddressSpace(memory_, std::move(name), ram_bytes_, *root, cache_));
}

Result<std::unique_ptr<MemorySnapshot>> AddressSpace::snapshot(std::string name, Waiter& waiter) {
  Result<FrameId> root = memory_.tree().clone(root_, waiter);
  if (!root) return root.error();
  flush_vcpus(waiter);
  return std::unique_ptr<MemorySnapshot>(
      new MemorySnapshot(memory_, std::move(name), ram_bytes_, *root, cache_));
}

SpaceAccounting AddressSpace::account() const {
  return account_tree(memory_, root_);
}

FaultCounters AddressSpace::counters() const {
  FaultCounters result;
  counters_.for_each([&result](const Counters& shard) {
    result.faults += shard.faults.load(std::memory_order_relaxed);
    result.demand_zero += shard.demand_zero.load(std::memory_order_relaxed);
    result.restored += shard.restored.load(std::memory_order_relaxed);
    result.copies += shard.copies.load(std::memory_order_relaxed);
    result.in_place += shard.in_place.load(std::memory_order_relaxed);
    result.shootdowns += shard.shootdowns.load(std::memory_order_relaxed);
    result.already_resolved += shard.already_resolved.load(std::memory_order_relaxed);
  });
  result.shootdown_wait_ns = vcpus_.wait_ns();
  return result;
}

}  // namespace vmfork
