// The guest's GDT: a null descriptor, a flat 64-bit code segment (selector
// 0x08) and a flat data segment (0x10). Long mode ignores most of it, but an
// engine that loads segment state (KVM) needs descriptors that match the
// hidden parts it sets, and a guest that reloads a selector reads them here.
#pragma once

#include <array>
#include <cstdint>

#include "base/result.h"
#include "guestmm/address_space.h"
#include "vmm/boot/monitor_area.h"
#include "vmm/boot/vcpu_boot_state.h"

namespace vmfork {

// The flat segments, as segment registers (selector and hidden part).
SegmentRegister flat_code_segment();
SegmentRegister flat_data_segment();

// The 8-byte descriptor for a segment register's hidden part (SDM vol. 3A,
// 3.4.5 "Segment Descriptors"). `segment.limit` must be representable: below
// 2^20 without granularity, or ending in 0xfff with it.
uint64_t encode_segment_descriptor(const SegmentRegister& segment);

// The table as the guest sees it, entry i at byte 8 * i.
std::array<uint64_t, kGdtEntries> gdt_entries();

// Writes the table at kGdtGpa.
Result<void> write_gdt(AddressSpace& space);

}  // namespace vmfork
