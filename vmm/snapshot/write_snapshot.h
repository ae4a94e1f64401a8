// Writing a snapshot directory (DESIGN section 7) from a frozen guest
// memory: the caller walks the pages to store (all present pages of a full
// snapshot, or those no longer shared with the parent of a diff one) and this
// writes them at their guest-physical offsets of the sparse memory file,
// computing each chunk's mask and checksum as they pass.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>

#include "base/result.h"
#include "base/types.h"
#include "vmm/snapshot/snapshot_config.h"
#include "vmm/snapshot/snapshot_state.h"

namespace vmfork {

// Called for every page to store, in increasing gfn order; `page` holds
// kPageSize bytes and is valid during the call. An error ends the walk.
using PageVisitor = std::function<Result<void>(Gfn gfn, const std::byte* page)>;
// Calls the visitor for each page to store and returns its first error.
using PageWalk = std::function<Result<void>(const PageVisitor& visit)>;

struct SnapshotWriteStats {
  uint64_t pages_written = 0;
  uint64_t chunks = 0;         // chunks with at least one stored page
  uint64_t bytes_written = 0;  // memory, state.json and config.json
  uint64_t write_ns = 0;       // the whole call, sync_ns included
  uint64_t sync_ns = 0;        // fdatasync of the memory file, fsync of the directories
};

// Writes the snapshot directory `dir`, which must not exist or be an empty
// directory (else an error naming it): memory first (the walk), then
// state.json, then config.json, in a temporary sibling directory that is
// flushed to disk and renamed to `dir` at the end, so a failure leaves
// nothing half-written at `dir`. Stores exactly the pages the walk gives
// (an all-zero page of a full snapshot may be left out by the caller: it
// reads as zero). A relative state.parent is taken from the current
// directory.
Result<SnapshotWriteStats> write_snapshot(const std::filesystem::path& dir,
                                          const SnapshotConfig& config, const SnapshotState& state,
                                          const PageWalk& pages);

}  // namespace vmfork
