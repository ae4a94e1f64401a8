// A PC guest's generation page (Platform::kPc), after the idea of QEMU's
// VMGenID: a page the guest reads (root, through /dev/mem: it lies in the
// e820-reserved first megabyte's top, which the kernel lets /dev/mem read)
// to learn that it is a clone, so that its kernel and programs can reseed
// what must differ between clones (randomness, ids). Little-endian:
//   u32 magic 0x4E47_4D56 ("VMGN"), u32 version 1,
//   u64 generation  (0 in a booted VM; a clone's is its original's + 1),
//   u64 clone_id    (0 in a booted VM; k in clone k of its fork).
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/address_space.h"

namespace vmfork {

inline constexpr Gpa kGenerationPageGpa{0xFE000};
inline constexpr uint32_t kGenerationMagic = 0x4E474D56;
inline constexpr uint32_t kGenerationVersion = 1;

struct Generation {
  uint64_t generation = 0;
  uint64_t clone_id = 0;
  friend bool operator==(const Generation&, const Generation&) = default;
};

// At boot: generation 0, clone 0.
Result<void> write_generation_page(AddressSpace& space, const Generation& generation);
// Refuses a page without the magic and version (a space not booted as a PC).
Result<Generation> read_generation_page(const AddressSpace& space);
// In clone `clone_id`'s space (a copy of its original's): the generation
// one past the original's.
Result<void> advance_generation(AddressSpace& space, uint64_t clone_id);

}  // namespace vmfork
