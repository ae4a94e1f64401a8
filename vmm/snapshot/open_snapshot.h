// Opening a snapshot directory and its parent chain for restore: everything
// that can be checked without reading the memory files' data is checked
// here, so that a restore fails before it starts rather than on a page.
// Nothing is written.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "base/result.h"
#include "vmm/snapshot/snapshot_config.h"
#include "vmm/snapshot/snapshot_page_source.h"
#include "vmm/snapshot/snapshot_state.h"

namespace vmfork {

struct OpenedSnapshot {
  std::filesystem::path dir;  // absolute
  SnapshotConfig config;
  SnapshotState state;
  // The snapshot directories whose memory files the pages come from: this
  // one, its parent, the parent's parent... (canonical paths).
  std::vector<std::filesystem::path> chain;
  std::shared_ptr<const SnapshotPageSource> pages;
};

// Checks config.json and state.json (they parse, the format version is
// known, their checksums match, every field is present with the right type
// and range, and they agree), the memory file's presence and size, and each
// parent the same way (same RAM and vCPU count, no loop). Errors name the
// file and the field.
Result<OpenedSnapshot> open_snapshot(const std::filesystem::path& dir);

// Reads every stored chunk of every memory file of the chain and checks its
// checksum (an eager restore, --verify): the first error.
Result<void> eager_verify(const OpenedSnapshot& snapshot);

}  // namespace vmfork
