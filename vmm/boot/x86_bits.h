// The x86-64 architectural bits the boot layout sets, with the SDM's names
// (Intel SDM vol. 3A: 2.5 "Control Registers", 2.2.1 "Extended Feature Enable
// Register", 4.5 "4-Level Paging", 3.4.5 "Segment Descriptors").
#pragma once

#include <cstdint>

namespace vmfork::x86 {

constexpr uint64_t bit(unsigned n) {
  return uint64_t{1} << n;
}

// CR0.
inline constexpr uint64_t kCr0Pe = bit(0);   // Protection Enable
inline constexpr uint64_t kCr0Mp = bit(1);   // Monitor Coprocessor
inline constexpr uint64_t kCr0Et = bit(4);   // Extension Type (hardwired 1)
inline constexpr uint64_t kCr0Ne = bit(5);   // Numeric Error (VMX requires it set)
inline constexpr uint64_t kCr0Wp = bit(16);  // Write Protect (honoured at CPL 0)
inline constexpr uint64_t kCr0Pg = bit(31);  // Paging

// CR4.
inline constexpr uint64_t kCr4Pae = bit(5);          // Physical Address Extension
inline constexpr uint64_t kCr4Osfxsr = bit(9);       // OS supports FXSAVE/FXRSTOR (SSE usable)
inline constexpr uint64_t kCr4Osxmmexcpt = bit(10);  // OS handles SIMD FP exceptions

// IA32_EFER.
inline constexpr uint64_t kEferLme = bit(8);   // Long Mode Enable
inline constexpr uint64_t kEferLma = bit(10);  // Long Mode Active

// RFLAGS: bit 1 is reserved and always reads as 1; IF (bit 9) stays clear.
inline constexpr uint64_t kRflagsReserved1 = bit(1);
inline constexpr uint64_t kRflagsIf = bit(9);

// 4-level paging entries (PML4E, PDPTE, PDE).
inline constexpr uint64_t kPtePresent = bit(0);
inline constexpr uint64_t kPteWritable = bit(1);
// User/Supervisor. Set in every entry although the guest runs at CPL 0:
// PVM runs it natively only then (vmm/kvm/pvm.h). Without CR4.SMEP and
// CR4.SMAP (never set here) it changes nothing for CPL 0 on other hosts.
inline constexpr uint64_t kPteUser = bit(2);
inline constexpr uint64_t kPteAccessed = bit(5);
inline constexpr uint64_t kPteDirty = bit(6);     // leaves only
inline constexpr uint64_t kPtePageSize = bit(7);  // PS: a PDE that maps a 2 MiB page
inline constexpr uint64_t kPteAddressMask = 0x000f'ffff'ffff'f000;

inline constexpr int kPagingLevels = 4;
inline constexpr int kEntriesPerTable = 512;
inline constexpr uint64_t kLargePageSize = uint64_t{2} << 20;           // one PDE
inline constexpr uint64_t kPdSpan = kLargePageSize * kEntriesPerTable;  // one PD: 1 GiB
inline constexpr uint64_t kPdptSpan = kPdSpan * kEntriesPerTable;       // one PDPT: 512 GiB

// Segment descriptor fields (the access byte and the flags nibble).
inline constexpr uint8_t kSegTypeCodeExecReadAccessed = 0xb;
inline constexpr uint8_t kSegTypeDataReadWriteAccessed = 0x3;

}  // namespace vmfork::x86
