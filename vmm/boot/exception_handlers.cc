#include "vmm/boot/exception_handlers.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <vector>

#include "vmm/boot/monitor_area.h"

namespace vmfork {

namespace {

constexpr uint64_t kStubBytes = 16;
constexpr Gpa kCommonGpa = kExceptionCodeGpa + kExceptionVectors * kStubBytes;

// Vectors for which the CPU pushes an error code (SDM vol. 3A, 6.15).
bool pushes_error_code(uint32_t vector) {
  switch (vector) {
    case 8:
    case 10:
    case 11:
    case 12:
    case 13:
    case 14:
    case 17:
    case 21:
    case 29:
    case 30:
      return true;
    default:
      return false;
  }
}

void put_u16(std::byte* at, uint16_t value) {
  std::memcpy(at, &value, sizeof(value));
}
void put_u32(std::byte* at, uint32_t value) {
  std::memcpy(at, &value, sizeof(value));
}

}  // namespace

Result<void> write_exception_handlers(AddressSpace& space) {
  std::array<std::byte, kExceptionVectors * 16> idt{};
  std::vector<std::byte> code(kExceptionVectors * kStubBytes + 16, std::byte{0xcc});
  for (uint32_t vector = 0; vector < kExceptionVectors; ++vector) {
    const uint64_t stub = kExceptionCodeGpa.value() + vector * kStubBytes;
    std::byte* gate = idt.data() + vector * 16;
    // 64-bit interrupt gate: offset, selector, IST 0, P=1 DPL=0 type 0xE.
    put_u16(gate + 0, static_cast<uint16_t>(stub));
    put_u16(gate + 2, kCodeSelector);
    gate[5] = std::byte{0x8e};
    put_u16(gate + 6, static_cast<uint16_t>(stub >> 16));
    put_u32(gate + 8, static_cast<uint32_t>(stub >> 32));

    std::byte* at = code.data() + vector * kStubBytes;
    size_t n = 0;
    if (!pushes_error_code(vector)) {
      at[n++] = std::byte{0x6a};  // push 0
      at[n++] = std::byte{0x00};
    }
    at[n++] = std::byte{0x6a};  // push vector
    at[n++] = static_cast<std::byte>(vector);
    at[n++] = std::byte{0xe9};  // jmp rel32 to the common part
    const auto rel = static_cast<int32_t>(static_cast<int64_t>(kCommonGpa.value()) -
                                          static_cast<int64_t>(stub + n + 4));
    std::memcpy(at + n, &rel, sizeof(rel));
  }
  // mov dx, kExceptionPort; mov eax, [rsp]; out dx, eax; 1: hlt; jmp 1b
  const std::array<uint8_t, 11> common = {
      0x66, 0xba, kExceptionPort & 0xff, kExceptionPort >> 8, 0x8b, 0x04, 0x24, 0xef, 0xf4,
      0xeb, 0xfd};
  std::memcpy(code.data() + kExceptionVectors * kStubBytes, common.data(), common.size());
  if (Result<void> written = space.write(kIdtGpa, idt); !written) return written;
  return space.write(kExceptionCodeGpa, code);
}

std::string exception_name(uint64_t vector) {
  static constexpr std::array<const char*, 22> kNames = {"divide error (#DE)",
                                                         "debug (#DB)",
                                                         "NMI",
                                                         "breakpoint (#BP)",
                                                         "overflow (#OF)",
                                                         "bound range exceeded (#BR)",
                                                         "invalid opcode (#UD)",
                                                         "device not available (#NM)",
                                                         "double fault (#DF)",
                                                         "coprocessor segment overrun",
                                                         "invalid TSS (#TS)",
                                                         "segment not present (#NP)",
                                                         "stack fault (#SS)",
                                                         "general protection (#GP)",
                                                         "page fault (#PF)",
                                                         "reserved vector 15",
                                                         "x87 floating-point error (#MF)",
                                                         "alignment check (#AC)",
                                                         "machine check (#MC)",
                                                         "SIMD floating-point exception (#XM)",
                                                         "virtualization exception (#VE)",
                                                         "control protection (#CP)"};
  if (vector < kNames.size()) return kNames[vector];
  return fmt::format("exception vector {}", vector);
}

}  // namespace vmfork
