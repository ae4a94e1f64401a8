#include "ept/walker.h"

#include "ept/test_point.h"

namespace vmfork {

namespace {

uint64_t access_qualification(Access requested) {
  uint64_t bits = 0;
  if (allows(requested, Access::kRead)) bits |= exit_qualification::kDataRead;
  if (allows(requested, Access::kWrite)) bits |= exit_qualification::kDataWrite;
  if (allows(requested, Access::kExecute)) bits |= exit_qualification::kInstructionFetch;
  return bits;
}

uint64_t permission_qualification(Access allowed) {
  // Bits 5:3 of the qualification carry R/W/X in the same order as bits 2:0.
  return uint64_t{static_cast<uint8_t>(allowed)} << 3;
}

WalkResult violation(Access requested, Access allowed, int level) {
  return WalkResult{WalkResult::Kind::kViolation, FrameId(), allowed,
                    access_qualification(requested) | permission_qualification(allowed), level};
}

}  // namespace

WalkResult ept_walk(const TableMemory& memory, FrameId root, Gfn gfn, Access requested) {
  if (gfn.value() > kMaxGfn) {
    return violation(requested, Access::kNone, kEptLevels);
  }
  Access allowed = Access::kAll;
  FrameId table = root;
  for (int level = kEptLevels; level >= 1; --level) {
    const EptEntry entry(
        memory.entries(table)[ept_index(gfn, level)].load(std::memory_order_acquire));
    if (!entry.present()) {
      // SDM: bits 5:3 report the AND over the entries used, and a
      // not-present entry contributes no permission.
      return violation(requested, Access::kNone, level);
    }
    if (entry.writable() && !allows(entry.access(), Access::kRead)) {
      // SDM "EPT Misconfigurations": write permission without read.
      return WalkResult{WalkResult::Kind::kMisconfiguration, FrameId(), allowed, 0, level};
    }
    allowed = allowed & entry.access();
    if (level == 1) {
      if (!allows(allowed, requested)) return violation(requested, allowed, level);
      return WalkResult{WalkResult::Kind::kTranslation, entry.frame(), allowed, 0, level};
    }
    if (entry.large_page()) {
      // This EPT maps 4 KiB pages only; a large page here is a bug.
      return WalkResult{WalkResult::Kind::kMisconfiguration, FrameId(), allowed, 0, level};
    }
    table = entry.frame();
    test_point(TestPoint::kBetweenWalkLevels);
  }
  __builtin_unreachable();
}

}  // namespace vmfork
