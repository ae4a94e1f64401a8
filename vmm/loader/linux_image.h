// Validation of a Linux x86 bzImage against the 64-bit boot protocol
// (Documentation/arch/x86/boot.rst): the real-mode setup sectors carry the
// setup header at 0x1f1, and the protected-mode kernel follows them. Only
// what a loader that enters the kernel at its 64-bit entry needs is checked;
// the real-mode setup code itself is never run. Parsing reads nothing outside
// the file, so any byte string gives either an image or an error naming the
// problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"

namespace vmfork {

// The oldest protocol accepted: 2.12 is the first with xloadflags, which is
// where a kernel says it has a 64-bit entry point.
inline constexpr uint16_t kLinuxMinProtocol = 0x020c;

// Views into the caller's file bytes: valid while they are.
struct LinuxImage {
  uint16_t protocol = 0;                    // e.g. 0x020f for 2.15
  std::span<const std::byte> setup_header;  // file bytes [0x1f1, 0x202 + file[0x201])
  std::span<const std::byte> kernel;  // the protected-mode kernel: file from (setup_sects+1)*512
  uint64_t pref_address = 0;          // where a relocatable kernel prefers to be loaded
  uint64_t init_size = 0;  // bytes the kernel needs from its load address while it decompresses
  uint32_t kernel_alignment = 0;  // a power of two when relocatable
  uint32_t initrd_addr_max = 0;   // highest address the initrd's last byte may have
  uint32_t cmdline_size = 0;      // longest command line, without its NUL
  bool relocatable = false;       // relocatable_kernel: may load anywhere kernel_alignment-aligned
};

// Checks the setup header without touching guest memory. Errors are
// kInvalidArgument with a message that starts "bzImage: " and names the
// field at fault: file too short, no 0xAA55 boot flag, no "HdrS" magic,
// protocol below 2.12, not LOADED_HIGH, no XLF_KERNEL_64, setup or kernel
// past the end of the file, a header too short or too long for the zero
// page, init_size 0, a relocatable kernel whose alignment is no power of two.
Result<LinuxImage> parse_linux_image(std::span<const std::byte> file);

}  // namespace vmfork
