#include "vmm/boot/gdt.h"

#include <bit>
#include <cassert>
#include <span>

#include "vmm/boot/x86_bits.h"

namespace vmfork {

SegmentRegister flat_code_segment() {
  return {.selector = kCodeSelector,
          .base = 0,
          .limit = 0xffff'ffff,
          .type = x86::kSegTypeCodeExecReadAccessed,
          .code_or_data = true,
          .dpl = 0,
          .present = true,
          .long_mode = true,
          .default_32bit = false,  // must be 0 when L is 1
          .granularity = true};
}

SegmentRegister flat_data_segment() {
  return {.selector = kDataSelector,
          .base = 0,
          .limit = 0xffff'ffff,
          .type = x86::kSegTypeDataReadWriteAccessed,
          .code_or_data = true,
          .dpl = 0,
          .present = true,
          .long_mode = false,
          .default_32bit = true,
          .granularity = true};
}

uint64_t encode_segment_descriptor(const SegmentRegister& s) {
  const uint64_t limit = s.granularity ? uint64_t{s.limit} >> 12 : uint64_t{s.limit};
  assert(limit < (uint64_t{1} << 20) && "segment limit does not fit a descriptor");
  assert((!s.granularity || (s.limit & 0xfff) == 0xfff) && "granular limit must end in 0xfff");
  // Types with the accessed bit set: the CPU never writes the descriptor to
  // set it, so the GDT page stays shared between clones.
  return (limit & 0xffff) | ((s.base & 0xff'ffff) << 16) | (uint64_t{s.type & 0xfu} << 40) |
         (uint64_t{s.code_or_data} << 44) | (uint64_t{s.dpl & 0x3u} << 45) |
         (uint64_t{s.present} << 47) | (((limit >> 16) & 0xf) << 48) |
         (uint64_t{s.long_mode} << 53) | (uint64_t{s.default_32bit} << 54) |
         (uint64_t{s.granularity} << 55) | (((s.base >> 24) & 0xff) << 56);
}

std::array<uint64_t, kGdtEntries> gdt_entries() {
  std::array<uint64_t, kGdtEntries> gdt{};
  gdt[kCodeSelector / 8] = encode_segment_descriptor(flat_code_segment());
  gdt[kDataSelector / 8] = encode_segment_descriptor(flat_data_segment());
  return gdt;
}

Result<void> write_gdt(AddressSpace& space) {
  static_assert(std::endian::native == std::endian::little);
  const std::array<uint64_t, kGdtEntries> gdt = gdt_entries();
  return space.write(kGdtGpa, std::as_bytes(std::span(gdt)));
}

}  // namespace vmfork
