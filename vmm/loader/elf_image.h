// Validation of a guest ELF file against DESIGN section 8: a static ELF64
// x86-64 executable whose PT_LOAD segments lie in [1 MiB, stacks bottom) and
// are loaded at their physical addresses. Parsing reads nothing outside the
// file and checks every sum for overflow, so any byte string gives either an
// image or an error that names the problem, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/types.h"
#include "vmm/boot/guest_layout.h"

namespace vmfork {

struct ElfSegment {
  Gpa start;                  // p_paddr (= p_vaddr: the guest runs identity-mapped)
  uint64_t file_offset = 0;   // p_offset
  uint64_t file_bytes = 0;    // p_filesz: copied from the file
  uint64_t memory_bytes = 0;  // p_memsz: the rest, up to here, reads as zero
  bool readable = false;      // p_flags PF_R
  bool writable = false;      // PF_W
  bool executable = false;    // PF_X

  Gpa end() const { return start + memory_bytes; }  // cannot overflow: checked by parse_elf
  friend bool operator==(const ElfSegment&, const ElfSegment&) = default;
};

struct ElfImage {
  Gpa entry;
  std::vector<ElfSegment> segments;  // PT_LOAD with p_memsz > 0, by address, disjoint
};

// Checks the whole file (identification, header, program header table, every
// PT_LOAD) without touching guest memory. Errors are kInvalidArgument with a
// message that starts "ELF: " and names the field at fault.
Result<ElfImage> parse_elf(std::span<const std::byte> file, const GuestLayout& layout);

}  // namespace vmfork
