// One decoded instruction in the interpreter's own compact form: what Zydis found, reduced to
// what the executor needs, so that the decoded-instruction cache holds small entries and the
// executor switches over a dense enum.
#pragma once

#include <array>
#include <cstdint>

#include "vmm/soft/flags.h"

namespace vmfork::soft {

// The supported operations. Anything else decodes to kUnsupported.
enum class Op : uint8_t {
  kUnsupported,
  // data movement
  kMov,
  kMovzx,
  kMovsx,
  kLea,
  kXchg,
  kBswap,
  kCmovcc,
  kSetcc,
  kCbw,  // cbw / cwde / cdqe: sign-extend the low half of the accumulator in place
  kCwd,  // cwd / cdq / cqo: sign of the accumulator into rdx
  kPush,
  kPop,
  kLeave,
  // arithmetic and logic
  kAdd,
  kOr,
  kAdc,
  kSbb,
  kAnd,
  kSub,
  kXor,
  kCmp,
  kTest,
  kInc,
  kDec,
  kNeg,
  kNot,
  kShl,
  kShr,
  kSar,
  kRol,
  kRor,
  kMul,
  kImul,
  kDiv,
  kIdiv,
  kCmpxchg,
  kXadd,
  kBt,
  kBts,
  kBtr,
  kBtc,
  kBsf,
  kBsr,
  kTzcnt,
  kLzcnt,
  kPopcnt,
  // control flow
  kJcc,
  kJrcxz,
  kJmp,
  kCall,
  kRet,
  // strings (with or without rep)
  kMovs,
  kStos,
  // flags
  kClc,
  kStc,
  kCmc,
  kCld,
  kStd,
  kLahf,
  kSahf,
  // system
  kNop,
  kFence,
  kHlt,
  kIn,
  kOut,
  kCpuid,
  kRdtsc,
};

enum class OperandKind : uint8_t { kNone, kReg, kMem, kImm };

inline constexpr uint8_t kNoReg = 0xff;
inline constexpr uint8_t kRipBase = 0xfe;  // base of a RIP-relative memory operand

enum class SegmentBase : uint8_t { kNone, kFs, kGs };

struct Operand {
  OperandKind kind = OperandKind::kNone;
  uint8_t size = 0;       // bytes
  uint8_t reg = kNoReg;   // kReg: GPR index (Gpr order)
  bool high8 = false;     // kReg: AH, CH, DH or BH
  uint8_t base = kNoReg;  // kMem: GPR index, kNoReg or kRipBase
  uint8_t index = kNoReg;
  uint8_t scale = 0;
  SegmentBase segment = SegmentBase::kNone;
  int64_t value = 0;  // kMem: displacement; kImm: immediate, sign-extended when encoded signed
};

struct DecodedInstruction {
  Op op = Op::kUnsupported;
  uint8_t length = 0;
  uint8_t operand_count = 0;  // visible operands in `operands`
  uint8_t operand_size = 0;   // bytes (the instruction's effective operand size)
  uint8_t address_size = 8;   // bytes; 4 with a 0x67 prefix
  Condition cc = Condition::kO;
  bool lock = false;
  bool rep = false;
  bool far_branch = false;                          // a far call, jmp or ret (op kUnsupported)
  SegmentBase source_segment = SegmentBase::kNone;  // movs: fs: or gs: on its source (DS:RSI)
  uint16_t mnemonic = 0;                            // ZydisMnemonic, for messages
  std::array<Operand, 3> operands{};
};

}  // namespace vmfork::soft
