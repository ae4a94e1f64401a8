// Exact status flags of the integer ALU, computed eagerly from operands and result. Values are
// held in uint64_t and masked to the operand width `bits` (8, 16, 32 or 64).
#pragma once

#include <cstdint>

#include "vmm/soft/cpu_state.h"

namespace vmfork::soft {

constexpr uint64_t width_mask(unsigned bits) {
  return bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
}
constexpr uint64_t sign_bit(unsigned bits) {
  return uint64_t{1} << (bits - 1);
}
// Sign-extends the low `bits` of `value` to 64 bits.
constexpr uint64_t sign_extend(uint64_t value, unsigned bits) {
  const uint64_t m = sign_bit(bits);
  value &= width_mask(bits);
  return (value ^ m) - m;
}
constexpr bool msb(uint64_t value, unsigned bits) {
  return (value & sign_bit(bits)) != 0;
}

// ZF, SF and PF of a result (PF: even parity of the low byte).
constexpr uint64_t flags_zsp(uint64_t result, unsigned bits) {
  result &= width_mask(bits);
  uint64_t f = 0;
  if (result == 0) f |= rflags::kZf;
  if (msb(result, bits)) f |= rflags::kSf;
  if ((__builtin_popcountll(result & 0xff) & 1) == 0) f |= rflags::kPf;
  return f;
}

// a + b + carry_in = result (add, adc, inc's ZSPAO part, xadd).
constexpr uint64_t flags_add(uint64_t a, uint64_t b, uint64_t result, unsigned bits) {
  uint64_t f = flags_zsp(result, bits);
  // Carry out of the top bit, from the carry vector (correct with a carry in as well).
  if (msb((a & b) | ((a | b) & ~result), bits)) f |= rflags::kCf;
  if (msb((a ^ result) & (b ^ result), bits)) f |= rflags::kOf;
  if (((a ^ b ^ result) & 0x10) != 0) f |= rflags::kAf;
  return f;
}

// a - b - borrow_in = result (sub, sbb, cmp, neg, dec, cmpxchg).
constexpr uint64_t flags_sub(uint64_t a, uint64_t b, uint64_t result, unsigned bits) {
  uint64_t f = flags_zsp(result, bits);
  // Borrow out of the top bit, from the borrow vector.
  if (msb((~a & b) | (~(a ^ b) & result), bits)) f |= rflags::kCf;
  if (msb((a ^ b) & (a ^ result), bits)) f |= rflags::kOf;
  if (((a ^ b ^ result) & 0x10) != 0) f |= rflags::kAf;
  return f;
}

// and, or, xor, test: CF = OF = 0; AF is undefined in the SDM and cleared here (as hardware does).
constexpr uint64_t flags_logic(uint64_t result, unsigned bits) {
  return flags_zsp(result, bits);
}

// Replaces the bits of `mask` in `rflags_value` with those of `flags`.
constexpr uint64_t merge_flags(uint64_t rflags_value, uint64_t flags, uint64_t mask) {
  return (rflags_value & ~mask) | (flags & mask);
}

// Condition codes in the order of the opcode's low nibble (Jcc, SETcc, CMOVcc).
enum class Condition : uint8_t {
  kO,
  kNo,
  kB,
  kNb,
  kZ,
  kNz,
  kBe,
  kNbe,
  kS,
  kNs,
  kP,
  kNp,
  kL,
  kNl,
  kLe,
  kNle,
};

constexpr bool condition_holds(Condition cc, uint64_t f) {
  const bool cf = (f & rflags::kCf) != 0;
  const bool zf = (f & rflags::kZf) != 0;
  const bool sf = (f & rflags::kSf) != 0;
  const bool of = (f & rflags::kOf) != 0;
  const bool pf = (f & rflags::kPf) != 0;
  bool holds = false;
  switch (static_cast<uint8_t>(cc) >> 1) {  // each pair is (condition, its negation)
    case 0:
      holds = of;
      break;
    case 1:
      holds = cf;
      break;
    case 2:
      holds = zf;
      break;
    case 3:
      holds = cf || zf;
      break;
    case 4:
      holds = sf;
      break;
    case 5:
      holds = pf;
      break;
    case 6:
      holds = sf != of;
      break;
    default:
      holds = zf || sf != of;
      break;
  }
  return (static_cast<uint8_t>(cc) & 1) != 0 ? !holds : holds;
}

}  // namespace vmfork::soft
