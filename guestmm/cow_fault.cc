// The fault path of an address space: demand-zero for a page never touched,
// and the COW fault protocol of DESIGN section 4 for a write to a read-only
// page. Step numbers are those of the design.
#include <cassert>

#include "ept/leaf_lock.h"
#include "ept/shootdown.h"
#include "guestmm/address_space.h"
#include "guestmm/frame_copy.h"
#include "guestmm/guest_memory.h"

namespace vmfork {

Result<Resolved> AddressSpace::handle_fault(Gpa gpa, Access access, Waiter& waiter) {
  if (gpa.value() >= ram_bytes_) {
    return make_error(ErrorCode::kOutsideRam, "access outside the RAM of " + name_);
  }
  count(&Counters::faults);
#ifndef NDEBUG
  faults_in_flight_.fetch_add(1);
  struct InFlight {
    std::atomic<int>& count;
    ~InFlight() { count.fetch_sub(1); }
  } in_flight{faults_in_flight_};
#endif
  Result<std::optional<FrameId>> restored = restored_frame(gpa.gfn(), waiter);
  if (!restored) return restored.error();
  if (allows(access, Access::kWrite)) return handle_write_fault(gpa.gfn(), *restored, waiter);

  // A read or fetch is refused only where nothing is mapped yet.
  Result<std::atomic<uint64_t>*> slot =
      memory_.tree().unshare_path(root_, gpa.gfn(), MissingTables::kAllocate, waiter);
  if (!slot) return slot.error();
  LeafLock leaf(**slot, waiter);
  if (leaf.entry().present()) {
    count(&Counters::already_resolved);
    return Resolved{leaf.entry().frame(), leaf.entry().access()};
  }
  if (*restored) {
    leaf.install(shared_restored_leaf(**restored));
    count(&Counters::restored);
    return Resolved{**restored, Access::kReadExecute};
  }
  Result<FrameId> frame = memory_.allocate_data(Zeroed::kYes, waiter);
  if (!frame) return frame.error();
  leaf.install(EptEntry::leaf(*frame, Access::kAll));
  count(&Counters::demand_zero);
  return Resolved{*frame, Access::kAll};
}

Result<Resolved> AddressSpace::handle_write_fault(Gfn gfn, std::optional<FrameId> restored,
                                                  Waiter& waiter) {
  EptTree& tree = memory_.tree();
  FrameTable& frames = memory_.frame_table();

  // 1. Unshare the path to G. Translations cached by our vCPUs stay valid:
  //    unsharing never changes what a leaf points at.
  Result<std::atomic<uint64_t>*> slot =
      tree.unshare_path(root_, gfn, MissingTables::kAllocate, waiter);
  if (!slot) return slot.error();

  // 2. Take G's leaf lock and re-read the leaf.
  LeafLock leaf(**slot, waiter);
  const EptEntry entry = leaf.entry();
  if (!entry.present()) {
    // Never touched: a frame of our own, zeroed or a copy of the restored
    // page, writable at once (no vCPU can have cached a translation of a
    // page that was not present).
    Result<FrameId> frame = first_frame(restored, waiter);
    if (!frame) return frame.error();
    leaf.install(EptEntry::leaf(*frame, Access::kAll));
    count(restored ? &Counters::restored : &Counters::demand_zero);
    return Resolved{*frame, Access::kAll};
  }
  if (entry.writable()) {
    // Another vCPU finished the work (go to 9).
    count(&Counters::already_resolved);
    return Resolved{entry.frame(), entry.access()};
  }
  const FrameId old_frame = entry.frame();

  // 3. Lock F and read its count. At 1, F is ours alone and the path to it
  //    is exclusive: set W in place. Upgrading needs no shootdown.
  {
    FrameLock frame_lock(frames, old_frame, waiter);
    if (frames.refcount(old_frame) == 1) {
      leaf.add_permissions(Access::kWrite);
      count(&Counters::in_place);
      return Resolved{old_frame, entry.access() | Access::kWrite};
    }
  }

  // 4. Copy F into F2, keeping our reference on F until step 8 (delayed
  //    release): while we count on F, no other holder sees a count of 1 in
  //    step 3, so nobody writes F while we copy it.
  Result<FrameId> copy = memory_.allocate_data(Zeroed::kNo, waiter);
  if (!copy) return copy.error();
  waiter.poll();
  copy_frame_polling(memory_.frame_data(*copy), memory_.frame_data(old_frame), waiter);
  count(&Counters::copies);

  // 5. Stage 1: publish the leaf as F2, readable and executable, not writable.
  leaf.remap_read_only(*copy);

  // 6. INVEPT, single-context for our EPTP, on every vCPU of this space;
  //    wait for every acknowledgement (servicing our own meanwhile). After
  //    this no vCPU of ours can translate G to F.
  ShootdownBatch batch = ShootdownBatch::single_context(vcpus_, eptp(), waiter);
  const InveptDone invept = batch.wait(waiter);
  count(&Counters::shootdowns);

  // 7. Stage 2: set W.
  leaf.make_writable(invept);

  // 8. Release our reference on F (reclaimed once nobody can reach it); the
  //    leaf unlocks when `leaf` goes out of scope.
  tree.release_entry(entry, 1);
  return Resolved{*copy, Access::kAll};
  // 9. The caller resumes the faulting vCPU, which retries its access.
}

}  // namespace vmfork
