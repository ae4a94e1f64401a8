#include "vmm/vm/memory_checksum.h"

#include <array>
#include <cstring>
#include <span>

#include "vmm/boot/guest_layout.h"

namespace vmfork {

uint64_t memory_checksum(const AddressSpace& space) {
  // FNV-1a over 64-bit words, then a final mix: enough to tell two memory
  // images apart, not a cryptographic hash.
  constexpr uint64_t kPrime = 0x100000001b3;
  uint64_t hash = 0xcbf29ce484222325;
  std::array<std::byte, kPageSize> page{};
  for (uint64_t gpa = kMonitorAreaEnd; gpa < space.ram_bytes(); gpa += kPageSize) {
    if (!space.read(Gpa(gpa), page)) return 0;
    for (size_t offset = 0; offset < page.size(); offset += sizeof(uint64_t)) {
      uint64_t word = 0;
      std::memcpy(&word, page.data() + offset, sizeof(word));
      hash = (hash ^ word) * kPrime;
    }
  }
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccd;
  hash ^= hash >> 33;
  return hash;
}

}  // namespace vmfork
