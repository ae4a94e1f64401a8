// The chunk table of a snapshot's memory file, `memory.chunks`: for every
// 64 KiB chunk of RAM, which of its pages the memory file stores and their
// checksum. A dense binary table indexed by chunk number, 16 bytes per
// chunk (1/4096 of the RAM), so that opening a snapshot reads no list that
// grows with the pages stored, and a lookup on first touch is an index:
// restores stay flat in RAM size. state.json holds the table's checksum.
//
// Record i, little-endian at offset 16 * i: u64 checksum (ChunkChecksum of
// the stored pages in page order), u16 page mask (bit p: page 16 * i + p is
// stored), 6 zero bytes. A chunk with nothing stored is all zero.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "guestmm/page_source.h"

namespace vmfork {

inline constexpr const char* kChunkTableFileName = "memory.chunks";

// A chunk the memory file stores pages of.
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

// What state.json says of the table.
struct ChunkTableSummary {
  uint64_t checksum = 0;       // of the whole file
  uint64_t stored_chunks = 0;  // records with a page
  uint64_t stored_pages = 0;
  friend bool operator==(const ChunkTableSummary&, const ChunkTableSummary&) = default;
};

class ChunkTable {
 public:
  ChunkTable() = default;
  // `chunks`: increasing index, each within `chunk_count`.
  ChunkTable(uint64_t chunk_count, std::span<const StoredChunk> chunks);

  uint64_t chunk_count() const { return records_.size(); }
  // The chunk's record, none when it stores nothing. `chunk` < chunk_count().
  std::optional<StoredChunk> find(uint64_t chunk) const;
  uint16_t pages(uint64_t chunk) const { return records_[chunk].pages; }
  std::vector<StoredChunk> stored() const;
  ChunkTableSummary summary() const;

  // Creates `path` (it must not exist) and writes the table.
  Result<void> write(const std::filesystem::path& path) const;
  // Reads `path` and checks it: its size for `chunk_count` chunks, its
  // checksum and counts against `summary` (which `state_path`'s field
  // memory.chunk_table gives), zero padding and empty records. Errors name
  // the file.
  static Result<ChunkTable> read(const std::filesystem::path& path, uint64_t chunk_count,
                                 const ChunkTableSummary& summary,
                                 const std::filesystem::path& state_path);

 private:
  struct Record {
    uint64_t checksum = 0;
    uint16_t pages = 0;
    uint16_t zero[3] = {};
  };
  static_assert(sizeof(Record) == 16);

  std::vector<Record> records_;
};

}  // namespace vmfork
