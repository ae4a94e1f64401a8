// The Intel MultiProcessor Specification 1.4 table (MP spec, chapter 4),
// from which a Linux guest without ACPI learns its CPUs, its IOAPIC and how
// the ISA IRQs reach it. Packed, little-endian, at kMpTableBase:
//
//   +0   MP floating pointer "_MP_" (16 bytes), pointing at +16
//   +16  configuration table "PCMP": a 44-byte header, then the entries in
//        ascending type order (the spec requires it):
//          one processor entry per vCPU (20 bytes each)
//          the ISA bus, id 0 (8 bytes)
//          the IOAPIC, id vcpu_count (8 bytes)
//          ISA IRQ i to IOAPIC pin i for i in 0..15 (8 bytes each)
//          ExtINT to LINT0 and NMI to LINT1 of every LAPIC (8 bytes each)
//
// The IRQ routing is the identity because that is KVM's default GSI routing
// (kvm_setup_default_irq_routing: GSI i reaches IOAPIC pin i and, below 16,
// PIC line i); the in-kernel PIT raises GSI 0, so pin 0. A PC's "IRQ 0 on
// pin 2" holds only under a routing that moves GSI 0 (QEMU installs one): an
// engine that sets KVM_SET_GSI_ROUTING must keep GSI i on pin i for i < 16,
// or change this table with it. Firecracker and cloud-hypervisor do the same.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "guestmm/address_space.h"

namespace vmfork {

// In [0x9FC00, 0x100000), which the e820 map reserves and Linux scans.
inline constexpr uint64_t kMpTableBase = 0xF0000;
inline constexpr uint32_t kMaxMpVcpus = 64;

namespace mp {

inline constexpr uint64_t kLocalApicBase = 0xFEE0'0000;
inline constexpr uint64_t kIoApicBase = 0xFEC0'0000;
inline constexpr uint8_t kLocalApicVersion = 0x14;  // an integrated xAPIC, as KVM reports
inline constexpr uint8_t kIoApicVersion = 0x11;     // KVM's IOAPIC version register
inline constexpr uint32_t kIoApicPins = 24;
inline constexpr uint8_t kIsaBusId = 0;
inline constexpr uint32_t kIsaIrqs = 16;
inline constexpr uint8_t kAllLocalApics = 0xFF;  // destination of a local interrupt entry

// Entry types (MP spec, table 4-3), the first byte of every entry.
enum class EntryType : uint8_t {
  kProcessor = 0,
  kBus = 1,
  kIoApic = 2,
  kIoInterrupt = 3,
  kLocalInterrupt = 4,
};

// Interrupt types of the two interrupt entries (MP spec, table 4-8).
enum class InterruptType : uint8_t { kInt = 0, kNmi = 1, kSmi = 2, kExtInt = 3 };

inline constexpr size_t kFloatingPointerBytes = 16;
inline constexpr size_t kHeaderBytes = 44;
inline constexpr size_t kProcessorEntryBytes = 20;
inline constexpr size_t kShortEntryBytes = 8;  // bus, IOAPIC and both interrupt entries
inline constexpr size_t kLocalInterruptEntries = 2;

// The configuration table's entries after the header.
constexpr size_t entry_count(uint32_t vcpu_count) {
  return vcpu_count + 1 + 1 + kIsaIrqs + kLocalInterruptEntries;
}

// The configuration table (header and entries): its "base table length".
constexpr size_t configuration_table_bytes(uint32_t vcpu_count) {
  return kHeaderBytes + vcpu_count * kProcessorEntryBytes +
         (entry_count(vcpu_count) - vcpu_count) * kShortEntryBytes;
}

// Everything written at kMpTableBase.
constexpr size_t table_bytes(uint32_t vcpu_count) {
  return kFloatingPointerBytes + configuration_table_bytes(vcpu_count);
}

}  // namespace mp

static_assert(kMpTableBase >= 0x9FC00 && kMpTableBase + mp::table_bytes(kMaxMpVcpus) <= 0x10'0000,
              "the MP table stays in the BIOS area the e820 map reserves");
// LAPIC ids 0..vcpu_count-1 and the IOAPIC's id vcpu_count must all be
// xAPIC ids, below the broadcast id 0xFF.
static_assert(kMaxMpVcpus < mp::kAllLocalApics, "APIC ids fit in 8 bits");

// Writes the floating pointer and the configuration table for vCPUs 0 ..
// vcpu_count - 1, vCPU 0 the bootstrap processor. Refuses a vcpu_count of 0
// or above kMaxMpVcpus without writing anything.
Result<void> write_mp_table(AddressSpace& space, uint32_t vcpu_count);

}  // namespace vmfork
