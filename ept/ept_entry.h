// EPT paging-structure entries and the EPT pointer, bit for bit as Intel SDM
// vol. 3C, "EPT Translation Mechanism", tables 29-1..29-6 name them.
#pragma once

#include <cstdint>

#include "base/types.h"
#include "ept/access.h"

namespace vmfork {

// EPT memory types (SDM: "EPT memory type", bits 5:3 of a leaf).
enum class MemoryType : uint8_t {
  kUncacheable = 0,
  kWriteCombining = 1,
  kWriteThrough = 4,
  kWriteProtected = 5,
  kWriteBack = 6,
};

// The four levels: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT. Each translates 9 bits.
inline constexpr int kEptLevels = 4;
inline constexpr int kEptIndexBits = 9;
inline constexpr uint64_t kEptEntriesPerTable = uint64_t{1} << kEptIndexBits;
inline constexpr int kGuestPhysicalBits = kEptLevels * kEptIndexBits + static_cast<int>(kPageShift);
static_assert(kGuestPhysicalBits == 48, "4-level EPT translates 48-bit guest-physical addresses");
static_assert(kEptEntriesPerTable * 8 == kPageSize,
              "a table is exactly one frame of 8-byte entries");

// Index of `gfn` in the table at `level`.
constexpr uint64_t ept_index(Gfn gfn, int level) {
  return (gfn.value() >> (kEptIndexBits * (level - 1))) & (kEptEntriesPerTable - 1);
}
constexpr uint64_t kMaxGfn = (uint64_t{1} << (kGuestPhysicalBits - kPageShift)) - 1;

class EptEntry {
 public:
  static constexpr uint64_t kRead = uint64_t{1} << 0;     // R: reads allowed
  static constexpr uint64_t kWrite = uint64_t{1} << 1;    // W: writes allowed
  static constexpr uint64_t kExecute = uint64_t{1} << 2;  // X: instruction fetches allowed
  static constexpr uint64_t kMemoryTypeShift = 3;         // leaf: EPT memory type, bits 5:3
  static constexpr uint64_t kMemoryTypeMask = uint64_t{7} << kMemoryTypeShift;
  static constexpr uint64_t kIgnorePat = uint64_t{1} << 6;     // leaf: ignore guest PAT
  static constexpr uint64_t kLargePage = uint64_t{1} << 7;     // PDPTE/PDE: maps 1 GiB / 2 MiB
  static constexpr uint64_t kAccessed = uint64_t{1} << 8;      // A (when EPTP enables A/D)
  static constexpr uint64_t kDirty = uint64_t{1} << 9;         // D (leaf)
  static constexpr uint64_t kUserExecute = uint64_t{1} << 10;  // mode-based execute control
  // Bit 11 is ignored by the processor; we use it as the leaf lock of
  // DESIGN section 4 (the "busy bit" serializing faults on one guest page).
  static constexpr uint64_t kSoftwareLock = uint64_t{1} << 11;
  // Physical address bits 51:12 (MAXPHYADDR = 52).
  static constexpr uint64_t kAddressMask = ((uint64_t{1} << 52) - 1) & ~kPageOffsetMask;
  static constexpr uint64_t kPermissionMask = kRead | kWrite | kExecute;

  constexpr EptEntry() = default;
  constexpr explicit EptEntry(uint64_t raw) : raw_(raw) {}

  // An entry that references a next-level table.
  static constexpr EptEntry table(FrameId frame, Access access) {
    return EptEntry((frame.pool_offset() & kAddressMask) | permission_bits(access));
  }
  // A 4 KiB leaf mapping `frame`.
  static constexpr EptEntry leaf(FrameId frame, Access access,
                                 MemoryType type = MemoryType::kWriteBack) {
    return EptEntry((frame.pool_offset() & kAddressMask) | permission_bits(access) |
                    (uint64_t{static_cast<uint8_t>(type)} << kMemoryTypeShift));
  }

  constexpr uint64_t raw() const { return raw_; }
  // SDM: an entry is present if any of bits 2:0 is set.
  constexpr bool present() const { return (raw_ & kPermissionMask) != 0; }
  constexpr bool writable() const { return (raw_ & kWrite) != 0; }
  constexpr bool large_page() const { return (raw_ & kLargePage) != 0; }
  constexpr bool locked() const { return (raw_ & kSoftwareLock) != 0; }
  constexpr FrameId frame() const { return FrameId::from_pool_offset(raw_ & kAddressMask); }
  constexpr MemoryType memory_type() const {
    return static_cast<MemoryType>((raw_ & kMemoryTypeMask) >> kMemoryTypeShift);
  }

  // Entry bits <-> Access, one function per direction.
  static constexpr uint64_t permission_bits(Access access) {
    return static_cast<uint64_t>(static_cast<uint8_t>(access)) & kPermissionMask;
  }
  constexpr Access access() const { return static_cast<Access>(raw_ & kPermissionMask); }

  constexpr EptEntry with_access(Access access) const {
    return EptEntry((raw_ & ~kPermissionMask) | permission_bits(access));
  }
  constexpr EptEntry with(uint64_t bits) const { return EptEntry(raw_ | bits); }
  constexpr EptEntry without(uint64_t bits) const { return EptEntry(raw_ & ~bits); }

  friend constexpr bool operator==(EptEntry, EptEntry) = default;

 private:
  uint64_t raw_ = 0;
};
static_assert(sizeof(EptEntry) == 8);
static_assert(EptEntry::permission_bits(Access::kAll) == EptEntry::kPermissionMask);
static_assert(EptEntry::permission_bits(Access::kWrite) == EptEntry::kWrite);
static_assert((EptEntry::kAddressMask & (EptEntry::kSoftwareLock | EptEntry::kPermissionMask)) ==
              0);
static_assert(EptEntry::leaf(FrameId(5), Access::kRead).frame() == FrameId(5));

// The EPT pointer (SDM table 25-9, "Format of Extended-Page-Table Pointer").
class Eptp {
 public:
  static constexpr uint64_t kMemoryTypeMask = 7;   // bits 2:0, paging-structure type
  static constexpr uint64_t kWalkLengthShift = 3;  // bits 5:3, walk length minus 1
  static constexpr uint64_t kWalkLengthMask = uint64_t{7} << kWalkLengthShift;
  static constexpr uint64_t kEnableAccessedDirty = uint64_t{1} << 6;
  static constexpr uint64_t kAddressMask = EptEntry::kAddressMask;

  constexpr Eptp() = default;
  constexpr explicit Eptp(uint64_t raw) : raw_(raw) {}
  // A write-back, 4-level EPTP for the PML4 table in `root`.
  static constexpr Eptp for_root(FrameId root) {
    return Eptp((root.pool_offset() & kAddressMask) |
                (uint64_t{kEptLevels - 1} << kWalkLengthShift) |
                static_cast<uint64_t>(MemoryType::kWriteBack));
  }
  constexpr uint64_t raw() const { return raw_; }
  constexpr FrameId root() const { return FrameId::from_pool_offset(raw_ & kAddressMask); }
  constexpr int walk_length() const {
    return static_cast<int>((raw_ & kWalkLengthMask) >> kWalkLengthShift) + 1;
  }
  constexpr MemoryType memory_type() const {
    return static_cast<MemoryType>(raw_ & kMemoryTypeMask);
  }
  constexpr bool valid() const { return raw_ != 0; }
  friend constexpr bool operator==(Eptp, Eptp) = default;

 private:
  uint64_t raw_ = 0;
};
static_assert(sizeof(Eptp) == 8);
static_assert(Eptp::for_root(FrameId(3)).walk_length() == kEptLevels);
static_assert(Eptp::for_root(FrameId(3)).root() == FrameId(3));

}  // namespace vmfork
