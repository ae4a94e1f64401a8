// What a VM's guest expects around its RAM: the freestanding guests of
// DESIGN section 8 (boot info, the project's ports only) or a PC, as Linux
// boots on it (KVM's in-kernel interrupt controllers and PIT, an MP table,
// the legacy ports of vmm/devices).
#pragma once

#include <cstdint>

namespace vmfork {

enum class Platform : uint8_t {
  kFreestanding,  // DESIGN section 8: long mode from the ELF entry, ports 0x3F8/0xF4/0x510/0x511
  kPc,            // a Linux kernel by its x86 boot protocol (vmm/boot/linux_boot.h)
};

inline const char* to_string(Platform platform) {
  return platform == Platform::kPc ? "pc" : "freestanding";
}

}  // namespace vmfork
