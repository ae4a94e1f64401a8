// The ports of the VM's devices (DESIGN section 8).
#pragma once

#include <cstdint>

namespace vmfork::port {

inline constexpr uint16_t kConsole = 0x3F8;   // out 8-bit: console byte
inline constexpr uint16_t kExit = 0x0F4;      // out 32-bit: end the VM with this status
inline constexpr uint16_t kFork = 0x510;      // out 32-bit N: fork N clones
inline constexpr uint16_t kSnapshot = 0x511;  // out 32-bit: snapshot into the monitor's directory

// The ports of DESIGN section 8 that a Linux guest (Platform::kPc) reaches
// too, beside its PC's devices: exit, fork and snapshot, 32-bit writes.
inline constexpr bool is_abi_port(uint16_t port, uint8_t size) {
  return size == 4 && (port == kExit || port == kFork || port == kSnapshot);
}

}  // namespace vmfork::port
