// The boot-info block of DESIGN section 8: packed, little-endian, version 1.
// Byte offsets (the ABI; guests hard-code them):
//
//   0  u32 magic 0x6B464D56      16 u64 ram_bytes     32 u64 free_base
//   4  u32 version 1             24 u64 clone_id      40 u64 free_end
//   8  u32 vcpu_count
//   12 u32 reserved 0                                 48 bytes in all
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/address_space.h"

namespace vmfork {

inline constexpr uint32_t kBootInfoMagic = 0x6B46'4D56;  // "VMFk" read as little-endian bytes
inline constexpr uint32_t kBootInfoVersion = 1;
inline constexpr size_t kBootInfoBytes = 48;

namespace boot_info_offset {
inline constexpr size_t kMagic = 0;
inline constexpr size_t kVersion = 4;
inline constexpr size_t kVcpuCount = 8;
inline constexpr size_t kReserved = 12;
inline constexpr size_t kRamBytes = 16;
inline constexpr size_t kCloneId = 24;
inline constexpr size_t kFreeBase = 32;
inline constexpr size_t kFreeEnd = 40;
}  // namespace boot_info_offset

struct BootInfo {
  uint32_t vcpu_count = 0;
  uint64_t ram_bytes = 0;
  uint64_t clone_id = 0;  // 0 in an original VM, k in clone k
  Gpa free_base;
  Gpa free_end;

  // The ABI bytes, independent of the host's struct layout and byte order.
  std::array<std::byte, kBootInfoBytes> encode() const;
  // Refuses a wrong magic, version or reserved field.
  static Result<BootInfo> decode(std::span<const std::byte, kBootInfoBytes> bytes);

  friend bool operator==(const BootInfo&, const BootInfo&) = default;
};

// Writes the block at kBootInfoGpa.
Result<void> write_boot_info(AddressSpace& space, const BootInfo& info);
Result<BootInfo> read_boot_info(const AddressSpace& space);
// For the fork device: sets clone_id in a clone's own boot info (a write
// through the clone's space, so the COW protocol gives the clone its own
// copy of the page and the snapshot's stays as it was).
Result<void> write_clone_id(AddressSpace& space, uint64_t clone_id);

}  // namespace vmfork
