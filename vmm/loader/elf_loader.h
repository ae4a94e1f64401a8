// The guest program loader: validates an ELF file (elf_image.h) and copies
// its segments into a guest address space at their physical addresses.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/address_space.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/loader/elf_image.h"

namespace vmfork {

struct LoadedElf {
  Gpa entry;
  std::vector<ElfSegment> segments;  // as loaded, by address
  Gpa free_base;                     // first 4 KiB boundary at or above the highest segment end
  Gpa free_end;                      // the bottom of the vCPU stacks
};

// Loads `file` into `space` (whose RAM must be the layout's): p_filesz bytes
// from the file at p_paddr, then zeros up to p_memsz. Nothing is written
// unless the whole file is valid. An error while writing (the frame pool
// exhausted) can leave some segments written.
Result<LoadedElf> load_elf(std::span<const std::byte> file, AddressSpace& space,
                           const GuestLayout& layout);

}  // namespace vmfork
