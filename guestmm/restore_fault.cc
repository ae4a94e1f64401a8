// The first touch of a page in a restored space (DESIGN section 7, lazy
// restore): the page cache supplies the frame. A read maps the cache's
// frame read-only, shared with every space restored from the same cache; a
// write maps a copy of it. The COW protocol of cow_fault.cc does the rest.
#include <cstring>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/page_cache.h"

namespace vmfork {

Result<std::optional<FrameId>> AddressSpace::restored_frame(Gfn gfn, Waiter& waiter) const {
  if (!cache_) return std::optional<FrameId>();
  // Mapped already: the cache has nothing to say (and is not read for it).
  // A leaf never goes back to not present, so a stale "not mapped" costs at
  // most a lookup.
  if (memory_.tree().walk(root_, gfn, Access::kRead).ok()) return std::optional<FrameId>();
  return cache_->frame(gfn, waiter);
}

Result<FrameId> AddressSpace::first_frame(std::optional<FrameId> restored, Waiter& waiter) {
  if (!restored) return memory_.allocate_data(Zeroed::kYes, waiter);
  Result<FrameId> frame = memory_.allocate_data(Zeroed::kNo, waiter);
  if (!frame) return frame;
  // The cache's frames never change, and it holds them until we are gone.
  std::memcpy(memory_.frame_data(*frame), memory_.frame_data(*restored), kPageSize);
  return frame;
}

EptEntry AddressSpace::shared_restored_leaf(FrameId restored) {
  // The cache holds a reference too, so no fault ever finds this frame at
  // refcount 1: a write copies it.
  memory_.get(restored);
  return EptEntry::leaf(restored, Access::kReadExecute);
}

}  // namespace vmfork
