// A reference 4-level page walk over guest memory read back through an
// AddressSpace, written from the SDM (vol. 3A, 4.5) independently of
// vmm/boot, so the tests check the tables the guest will really walk.
#pragma once

#include <cstdint>
#include <optional>

#include "tests/guestmm/test_support.h"

namespace vmfork::testing {

struct Translation {
  uint64_t physical = 0;
  uint64_t page_size = 0;
  bool writable = false;
};

inline std::optional<Translation> translate(const AddressSpace& space, uint64_t cr3,
                                            uint64_t linear) {
  constexpr uint64_t kPresent = 1, kWritable = 2, kPageSize = 0x80;
  constexpr uint64_t kAddress = 0x000f'ffff'ffff'f000;
  uint64_t table = cr3 & kAddress;
  bool writable = true;
  for (int level = 4; level >= 1; --level) {
    const unsigned shift = 12 + 9 * static_cast<unsigned>(level - 1);
    const uint64_t entry = read_u64(space, Gpa(table + ((linear >> shift) & 511) * 8));
    if ((entry & kPresent) == 0) return std::nullopt;
    writable = writable && (entry & kWritable) != 0;
    const bool leaf = level == 1 || ((level == 2 || level == 3) && (entry & kPageSize) != 0);
    if (leaf) {
      const uint64_t size = uint64_t{1} << shift;
      return Translation{.physical = (entry & kAddress & ~(size - 1)) | (linear & (size - 1)),
                         .page_size = size,
                         .writable = writable};
    }
    table = entry & kAddress;
  }
  return std::nullopt;
}

}  // namespace vmfork::testing
