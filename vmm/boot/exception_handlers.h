// Exception reporters for engines whose CPU delivers exceptions itself (kvm).
// The guest ABI gives a guest no IDT, so an exception there would become a
// triple fault, after which (on AMD) the CPU state is lost. Instead the
// monitor's own IDT, in its area below 1 MiB, points each of the 32
// exception vectors at a stub that pushes an error code (0 when the CPU
// pushes none) and the vector, writes the vector to kExceptionPort and
// halts. The monitor then reads the frame at RSP: vector, error code, RIP,
// CS, RFLAGS, RSP, SS, and ends the VM with an error naming the exception
// and its RIP. A guest that loads an IDT of its own replaces it.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "guestmm/address_space.h"

namespace vmfork {

inline constexpr uint16_t kExceptionPort = 0x5ff;
inline constexpr uint32_t kExceptionVectors = 32;
inline constexpr uint16_t kIdtLimit = kExceptionVectors * 16 - 1;

// What a reporter stub leaves on the stack, lowest address first.
struct ExceptionFrame {
  uint64_t vector;
  uint64_t error_code;
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};

// Writes the IDT and the stubs into the monitor area of `space`.
Result<void> write_exception_handlers(AddressSpace& space);

// "invalid opcode (#UD)" and the like.
std::string exception_name(uint64_t vector);

}  // namespace vmfork
