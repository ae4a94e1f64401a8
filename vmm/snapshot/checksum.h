// The checksums of a snapshot directory: 64-bit XXH3 (xxHash) of the JSON
// files and of each memory chunk's stored pages. They catch damage (a flipped
// bit, a truncated or swapped file), not tampering: nothing here is
// cryptographic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/types.h"

namespace vmfork {

uint64_t bytes_checksum(std::span<const std::byte> bytes);
uint64_t bytes_checksum(const std::string& text);

// The checksum of the pages a memory file stores for one chunk, in page
// order: each page's hash is seeded with the previous one, so the value
// depends on every byte and on the order, yet neither the writer nor the
// reader needs the pages contiguous (they go straight to or from the guest's
// frames).
class ChunkChecksum {
 public:
  void add_page(const std::byte* page);
  uint64_t value() const { return value_; }

 private:
  uint64_t value_ = 0;
};

// "0x" and 16 hex digits: how state.json writes a checksum (a JSON number
// above 2^53 would lose bits in many readers).
std::string checksum_text(uint64_t checksum);

}  // namespace vmfork
