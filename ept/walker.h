// The 4-level EPT walk, as the processor performs it: permissions are ANDed
// down the walk and an access is allowed only if every level allows it.
#pragma once

#include <cstdint>

#include "base/types.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/table_memory.h"

namespace vmfork {

// Exit-qualification bits of an EPT violation (SDM table 28-7).
namespace exit_qualification {
inline constexpr uint64_t kDataRead = uint64_t{1} << 0;
inline constexpr uint64_t kDataWrite = uint64_t{1} << 1;
inline constexpr uint64_t kInstructionFetch = uint64_t{1} << 2;
inline constexpr uint64_t kReadable = uint64_t{1} << 3;    // AND of bit 0 of every entry used
inline constexpr uint64_t kWritable = uint64_t{1} << 4;    // AND of bit 1
inline constexpr uint64_t kExecutable = uint64_t{1} << 5;  // AND of bit 2
}  // namespace exit_qualification

struct WalkResult {
  enum class Kind : uint8_t { kTranslation, kViolation, kMisconfiguration };
  Kind kind;
  FrameId frame;           // kTranslation: the data frame
  Access allowed;          // permissions ANDed over every level walked
  uint64_t qualification;  // kViolation: exit qualification
  int level;               // the level where the walk stopped (1 for a leaf)

  bool ok() const { return kind == Kind::kTranslation; }
};

// Walks the tree rooted at `root` for an access of kind `requested` to
// `gfn`. Reads entries with acquire loads and takes no lock: a concurrent
// unshare never changes what a leaf points at, and reclamation keeps every
// table the walk may pass through alive until the walker's vCPU is quiescent.
WalkResult ept_walk(const TableMemory& memory, FrameId root, Gfn gfn, Access requested);

}  // namespace vmfork
