// The pages of a snapshot chain (a snapshot, its parent, the parent's
// parent...) as guestmm's PageSource: a page reads from the newest memory
// file that stores it. Every read checks the chunk checksum of each file it
// read from, so a damaged file is found on first touch, not used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "guestmm/page_source.h"
#include "vmm/snapshot/chunk_table.h"
#include "vmm/snapshot/file_descriptor.h"

namespace vmfork {

// One snapshot's memory file: open read-only for the source's lifetime.
struct MemoryLayer {
  std::filesystem::path path;
  FileDescriptor fd;
  ChunkTable table;
};

class SnapshotPageSource final : public PageSource {
 public:
  // `layers`: newest first, each of `ram_bytes`, chunks within it.
  SnapshotPageSource(uint64_t ram_bytes, std::vector<MemoryLayer> layers);

  uint64_t ram_bytes() const override { return ram_bytes_; }
  // The OR of the layers' masks: one table lookup per layer.
  uint16_t pages_with_data(uint64_t chunk) const override;
  // pread/preadv only, on descriptors that stay open: any thread, concurrently.
  Result<void> read_chunk(uint64_t chunk,
                          std::span<std::byte* const, kChunkPages> pages) const override;

  // Reads every stored chunk of every layer and checks its checksum; the
  // first error. For an eager restore or a --verify.
  Result<void> verify_all() const;
  size_t layer_count() const { return layers_.size(); }

 private:
  // Reads the pages `stored` of `layer` stores in chunk `stored.index`, page
  // i into to[i] (non-null for each stored page), and checks their checksum.
  Result<void> read_layer_chunk(const MemoryLayer& layer, const StoredChunk& stored,
                                std::span<std::byte* const, kChunkPages> to) const;

  const uint64_t ram_bytes_;
  const uint64_t chunk_count_;
  const std::vector<MemoryLayer> layers_;
};

}  // namespace vmfork
