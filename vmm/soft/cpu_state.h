// The architectural state of one soft vCPU: what the interpreter reads and writes, and what a
// snapshot saves.
#pragma once

#include <array>
#include <cstdint>

namespace vmfork::soft {

// General-purpose registers in SDM encoding order (ModRM.reg/rm with REX extension).
enum class Gpr : uint8_t {
  kRax,
  kRcx,
  kRdx,
  kRbx,
  kRsp,
  kRbp,
  kRsi,
  kRdi,
  kR8,
  kR9,
  kR10,
  kR11,
  kR12,
  kR13,
  kR14,
  kR15,
};
inline constexpr unsigned kGprCount = 16;

// RFLAGS bits (SDM vol. 1, 3.4.3).
namespace rflags {
inline constexpr uint64_t kCf = uint64_t{1} << 0;      // Carry
inline constexpr uint64_t kFixed1 = uint64_t{1} << 1;  // Reserved, always 1
inline constexpr uint64_t kPf = uint64_t{1} << 2;      // Parity (of the low byte)
inline constexpr uint64_t kAf = uint64_t{1} << 4;      // Auxiliary carry (out of bit 3)
inline constexpr uint64_t kZf = uint64_t{1} << 6;      // Zero
inline constexpr uint64_t kSf = uint64_t{1} << 7;      // Sign
inline constexpr uint64_t kIf = uint64_t{1} << 9;      // Interrupt enable (no effect here)
inline constexpr uint64_t kDf = uint64_t{1} << 10;     // Direction (string instructions)
inline constexpr uint64_t kOf = uint64_t{1} << 11;     // Overflow
// The six status flags arithmetic instructions write.
inline constexpr uint64_t kArithmetic = kCf | kPf | kAf | kZf | kSf | kOf;
}  // namespace rflags

struct CpuState {
  std::array<uint64_t, kGprCount> gpr{};
  uint64_t rip = 0;
  uint64_t rflags = rflags::kFixed1;
  // Segments are flat; FS/GS keep a base only (added to fs:/gs: memory operands).
  uint64_t fs_base = 0;
  uint64_t gs_base = 0;

  uint64_t& reg(Gpr r) { return gpr[static_cast<uint8_t>(r)]; }
  uint64_t reg(Gpr r) const { return gpr[static_cast<uint8_t>(r)]; }
};

}  // namespace vmfork::soft
