// The guest-physical memory map of DESIGN section 8, shared by the ELF loader,
// the boot layout, the engines and the fork device:
//
//   [0, 1 MiB)                      the monitor's: boot info, GDT, page tables
//   [1 MiB, stacks_bottom)          ELF segments, then free_base..free_end
//   [stacks_bottom, ram_bytes)      one 64 KiB stack per vCPU, vCPU 0 highest
//
// A GuestLayout only exists valid (GuestLayout::create checks it), so its
// users need not check it again.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/types.h"
#include "vmm/boot/platform.h"

namespace vmfork {

inline constexpr uint64_t kMonitorAreaEnd = uint64_t{1} << 20;  // ELF segments start here
inline constexpr uint64_t kVcpuStackBytes = uint64_t{64} << 10;
// RAM must be a whole number of 2 MiB pages: the identity map uses 2 MiB
// pages, and a partial last page would map guest-physical addresses that are
// not RAM. Refusing such sizes keeps "mapped" and "RAM" the same thing.
inline constexpr uint64_t kRamGranule = uint64_t{2} << 20;
// The largest RAM whose identity map fits below kMonitorAreaEnd (checked by a
// static_assert in page_tables.h).
inline constexpr uint64_t kMaxRamBytes = uint64_t{64} << 30;
// A PC's RAM ends below the 32-bit hole where the IOAPIC (0xFEC00000) and
// the local APICs (0xFEE00000) are; RAM above 4 GiB is not supported yet.
inline constexpr uint64_t kMaxPcRamBytes = uint64_t{3} << 30;
// The MP table (vmm/boot/mp_table.h) names at most this many CPUs.
inline constexpr uint32_t kMaxPcVcpus = 64;

class GuestLayout {
 public:
  // Refuses vcpu_count == 0, RAM that is not a multiple of 2 MiB, RAM above
  // kMaxRamBytes, and RAM too small for the monitor's 1 MiB and the stacks.
  static Result<GuestLayout> create(uint64_t ram_bytes, uint32_t vcpu_count);
  // A PC for a Linux kernel (Platform::kPc): 1 to kMaxPcVcpus vCPUs, RAM a
  // multiple of 2 MiB up to kMaxPcRamBytes. Where the kernel goes is
  // vmm/boot/linux_boot.h's; image_base(), stacks_bottom() and stack_top()
  // are the freestanding layout's and mean nothing for it.
  static Result<GuestLayout> create_pc(uint64_t ram_bytes, uint32_t vcpu_count);

  Platform platform() const { return platform_; }

  uint64_t ram_bytes() const { return ram_bytes_; }
  uint32_t vcpu_count() const { return vcpu_count_; }

  // Lowest address an ELF segment may occupy.
  Gpa image_base() const { return Gpa(kMonitorAreaEnd); }
  // Bottom of the lowest vCPU stack: ELF segments end at or below it, and it
  // is the guest's free_end. A multiple of 64 KiB.
  Gpa stacks_bottom() const { return Gpa(ram_bytes_ - uint64_t{vcpu_count_} * kVcpuStackBytes); }
  // vCPU i's stack is [stack_top(i) - 64 KiB, stack_top(i)); vCPU 0's top is
  // the top of RAM. Requires vcpu < vcpu_count().
  Gpa stack_top(uint32_t vcpu) const { return Gpa(ram_bytes_ - uint64_t{vcpu} * kVcpuStackBytes); }

 private:
  GuestLayout(uint64_t ram_bytes, uint32_t vcpu_count, Platform platform)
      : ram_bytes_(ram_bytes), vcpu_count_(vcpu_count), platform_(platform) {}

  uint64_t ram_bytes_;
  uint32_t vcpu_count_;
  Platform platform_;
};

}  // namespace vmfork
