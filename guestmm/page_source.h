// Where the pages of a restored guest RAM come from on first touch (DESIGN
// section 7, lazy restore): a snapshot directory's memory file, its parent
// chain included (vmm/snapshot implements it). guestmm's PageCache reads it
// one chunk at a time and shares the frames among every space restored from
// it; guestmm knows nothing of files.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"
#include "base/types.h"

namespace vmfork {

class PageSource {
 public:
  // A chunk is this many consecutive guest pages (64 KiB): the unit of
  // reading and of checksumming.
  static constexpr uint64_t kChunkPages = 16;
  static constexpr uint64_t kChunkBytes = kChunkPages * kPageSize;

  virtual ~PageSource() = default;

  // The guest RAM the source describes (a multiple of kChunkBytes).
  virtual uint64_t ram_bytes() const = 0;
  // Which pages of chunk `chunk` have data: bit i is page
  // chunk * kChunkPages + i. Pages without data read as zero. No I/O.
  virtual uint16_t pages_with_data(uint64_t chunk) const = 0;
  // Reads the pages of `chunk` that have data into pages[i] (i: the page's
  // index in the chunk; pages[i] is null where bit i of pages_with_data is
  // clear), checking what it read. An error names the file and the chunk;
  // the contents of pages[] are then unspecified. Any thread, concurrently.
  virtual Result<void> read_chunk(uint64_t chunk,
                                  std::span<std::byte* const, kChunkPages> pages) const = 0;
};

}  // namespace vmfork
