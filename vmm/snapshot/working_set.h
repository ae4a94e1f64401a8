// A snapshot's recorded working set (DESIGN section 7, the optional
// prefetch of issue 11): the memory chunks a restored clone read in its
// first moments, in the order it read them. `vmfork restore
// --record-working-set` writes it into the snapshot directory; later
// restores read those chunks in the background while the clones run, so
// that their first touches find them loaded (the idea of REAP and FaaSnap).
//
// It is advice, not state: it is not covered by state.json's checksums, and
// a missing or bad one costs only the prefetch (the restore never depends
// on it). A damaged chunk is still caught by its checksum when read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"

namespace vmfork {

inline constexpr const char* kWorkingSetFileName = "working_set.json";

// Replaces DIR/working_set.json (written aside, then renamed into place).
Result<void> write_working_set(const std::filesystem::path& dir, std::span<const uint64_t> chunks);

// The chunks of DIR/working_set.json, none when there is no such file. An
// error names the file and what is wrong (a chunk at or past
// `chunk_count`, a wrong type, a repeated chunk).
Result<std::optional<std::vector<uint64_t>>> read_working_set(const std::filesystem::path& dir,
                                                              uint64_t chunk_count);

}  // namespace vmfork
