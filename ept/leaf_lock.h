// The leaf lock of one guest page (the busy bit of its EPT leaf), and the
// only code that writes EPT leaves. Every change goes through store(),
// which enforces the rule of DESIGN section 4: a present leaf changes frame
// only by being published read-only first (stage 1), and becomes writable
// again only with proof that INVEPT completed on every vCPU (stage 2).
// The one other writer of leaves is EptTree's unshare, which only clears W
// in a table that was entered read-only, so no vCPU can hold a writable
// translation through it.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/waiter.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/shootdown.h"

namespace vmfork {

class [[nodiscard]] LeafLock {
 public:
  // Spins until the busy bit is ours; `waiter` services shootdowns meanwhile.
  LeafLock(std::atomic<uint64_t>& slot, Waiter& waiter);
  ~LeafLock();
  LeafLock(const LeafLock&) = delete;
  LeafLock& operator=(const LeafLock&) = delete;

  // The leaf as it is now (without the busy bit).
  EptEntry entry() const { return entry_; }

  // Not present -> present.
  void install(EptEntry entry);
  // Same frame, more permissions: no translation becomes wrong, so no
  // shootdown is needed.
  void add_permissions(Access access);
  // Same frame, fewer permissions (or not present). The caller must INVEPT
  // before it relies on the reduction; returns the previous entry.
  EptEntry reduce_permissions(Access access);
  // Step 5, stage 1: the leaf now names `frame`, readable and executable as
  // before, never writable.
  void remap_read_only(FrameId frame);
  // Step 7, stage 2: set W, after the INVEPT of step 6.
  void make_writable(const InveptDone& invept);

 private:
  void store(EptEntry entry);

  std::atomic<uint64_t>& slot_;
  EptEntry entry_;
  bool awaiting_invept_ = false;  // remapped, not yet made writable
};

}  // namespace vmfork
