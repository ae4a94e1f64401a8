// state.json of a snapshot directory: the format version, the vCPU states,
// the layout, the devices, the parent, the checksum of config.json and the
// description of the memory file (which chunks it stores pages of, and their
// checksums), and a checksum over state.json itself.
//
// The self-checksum is over the compact dump of the document without its
// "checksum" member: nlohmann::json keeps members sorted, so the dump is
// canonical whatever the file's layout.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ept/result.h"
#include "vmm/snapshot/snapshot_state.h"

namespace vmfork {

inline constexpr uint64_t kSnapshotFormatVersion = 1;
inline constexpr const char* kConfigFileName = "config.json";
inline constexpr const char* kStateFileName = "state.json";
inline constexpr const char* kMemoryFileName = "memory";

// A chunk (PageSource::kChunkPages pages) the memory file stores pages of.
struct StoredChunk {
  uint64_t index = 0;
  uint16_t pages = 0;     // bit i: page index * kChunkPages + i is stored (never 0)
  uint64_t checksum = 0;  // ChunkChecksum of the stored pages, in page order
  friend bool operator==(const StoredChunk&, const StoredChunk&) = default;
};

// Whether bit `page` (0..15) of a chunk's page mask is set.
constexpr bool has_page(uint16_t mask, uint64_t page) {
  return (static_cast<unsigned>(mask) >> page & 1u) != 0;
}

struct StateFile {
  SnapshotState state;
  uint64_t ram_bytes = 0;  // the layout; the vCPU count is state.vcpus.size()
  uint64_t config_checksum = 0;
  std::vector<StoredChunk> chunks;  // increasing index
};

std::string state_json_text(const StateFile& file);
// Parses and checks state.json's text: format version, self-checksum, every
// field's type and range, and their agreement (vCPU states against the
// layout, requester, chunks within RAM and increasing). `file` names it in
// errors. Comparing with config.json and the memory file is the caller's.
Result<StateFile> parse_state_json(const std::filesystem::path& file, const std::string& text);

}  // namespace vmfork
