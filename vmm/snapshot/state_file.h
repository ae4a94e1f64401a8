// state.json of a snapshot directory: the format version, the vCPU states,
// the layout, the devices, the parent, the checksum of config.json and the
// description of the memory file (its size, and the checksum and counts of
// its chunk table, memory.chunks), and a checksum over state.json itself.
//
// The self-checksum is over the compact dump of the document without its
// "checksum" member: nlohmann::json keeps members sorted, so the dump is
// canonical whatever the file's layout.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/snapshot/chunk_table.h"
#include "vmm/snapshot/snapshot_state.h"

namespace vmfork {

inline constexpr uint64_t kSnapshotFormatVersion = 1;
inline constexpr const char* kConfigFileName = "config.json";
inline constexpr const char* kStateFileName = "state.json";
inline constexpr const char* kMemoryFileName = "memory";
// The most a state.json may weigh before it is read whole: up to
// kMaxSnapshotVcpus vCPU states (the chunks are in the binary chunk table).
inline constexpr uint64_t kMaxStateFileBytes = uint64_t{64} << 20;

struct StateFile {
  SnapshotState state;
  uint64_t ram_bytes = 0;  // the layout; the vCPU count is state.vcpus.size()
  uint64_t config_checksum = 0;
  // With a parent: the checksum of the parent's state.json as the diff was
  // written, so that a parent directory replaced since is refused.
  std::optional<uint64_t> parent_checksum;
  ChunkTableSummary chunk_table;  // memory.chunks (vmm/snapshot/chunk_table.h)
};

std::string state_json_text(const StateFile& file);
// Parses and checks state.json's text: format version, self-checksum, every
// field's type and range, and their agreement (vCPU states against the
// layout, requester). `file` names it in
// errors. Comparing with config.json and the memory file is the caller's.
Result<StateFile> parse_state_json(const std::filesystem::path& file, const std::string& text);

}  // namespace vmfork
