#include "vmm/snapshot/checksum.h"

#include <fmt/format.h>
#include <xxhash.h>

namespace vmfork {

uint64_t bytes_checksum(std::span<const std::byte> bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

uint64_t bytes_checksum(const std::string& text) {
  return XXH3_64bits(text.data(), text.size());
}

void ChunkChecksum::add_page(const std::byte* page) {
  value_ = XXH3_64bits_withSeed(page, kPageSize, value_);
}

std::string checksum_text(uint64_t checksum) {
  return fmt::format("{:#018x}", checksum);
}

}  // namespace vmfork
