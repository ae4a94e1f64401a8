// Instruction decoding: Zydis in 64-bit mode, reduced to DecodedInstruction.
#pragma once

#include <Zydis/Zydis.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "vmm/soft/decoded_instruction.h"

namespace vmfork::soft {

inline constexpr size_t kMaxInstructionLength = 15;

enum class DecodeStatus : uint8_t {
  kOk,          // `out` holds the instruction (possibly Op::kUnsupported)
  kNeedMore,    // the bytes end before the instruction does
  kUndecodable  // not a valid x86-64 instruction
};

class Decoder {
 public:
  Decoder();
  DecodeStatus decode(const std::byte* bytes, size_t length, DecodedInstruction& out) const;

 private:
  ZydisDecoder decoder_;
};

// "add" for a ZydisMnemonic stored in DecodedInstruction::mnemonic.
const char* mnemonic_name(uint16_t mnemonic);

}  // namespace vmfork::soft
