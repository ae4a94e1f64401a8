#include "vmm/soft/decoder.h"

namespace vmfork::soft {
namespace {

// The operation and (for conditional forms) condition of a Zydis mnemonic.
struct Mapping {
  Op op = Op::kUnsupported;
  Condition cc = Condition::kO;
};

Mapping map_mnemonic(ZydisMnemonic m) {
  using C = Condition;
  switch (m) {
    case ZYDIS_MNEMONIC_MOV:
      return {Op::kMov};
    case ZYDIS_MNEMONIC_MOVZX:
      return {Op::kMovzx};
    case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_MOVSXD:
      return {Op::kMovsx};
    case ZYDIS_MNEMONIC_LEA:
      return {Op::kLea};
    case ZYDIS_MNEMONIC_XCHG:
      return {Op::kXchg};
    case ZYDIS_MNEMONIC_BSWAP:
      return {Op::kBswap};
    case ZYDIS_MNEMONIC_CBW:
    case ZYDIS_MNEMONIC_CWDE:
    case ZYDIS_MNEMONIC_CDQE:
      return {Op::kCbw};
    case ZYDIS_MNEMONIC_CWD:
    case ZYDIS_MNEMONIC_CDQ:
    case ZYDIS_MNEMONIC_CQO:
      return {Op::kCwd};
    case ZYDIS_MNEMONIC_PUSH:
      return {Op::kPush};
    case ZYDIS_MNEMONIC_POP:
      return {Op::kPop};
    case ZYDIS_MNEMONIC_LEAVE:
      return {Op::kLeave};
    case ZYDIS_MNEMONIC_ADD:
      return {Op::kAdd};
    case ZYDIS_MNEMONIC_OR:
      return {Op::kOr};
    case ZYDIS_MNEMONIC_ADC:
      return {Op::kAdc};
    case ZYDIS_MNEMONIC_SBB:
      return {Op::kSbb};
    case ZYDIS_MNEMONIC_AND:
      return {Op::kAnd};
    case ZYDIS_MNEMONIC_SUB:
      return {Op::kSub};
    case ZYDIS_MNEMONIC_XOR:
      return {Op::kXor};
    case ZYDIS_MNEMONIC_CMP:
      return {Op::kCmp};
    case ZYDIS_MNEMONIC_TEST:
      return {Op::kTest};
    case ZYDIS_MNEMONIC_INC:
      return {Op::kInc};
    case ZYDIS_MNEMONIC_DEC:
      return {Op::kDec};
    case ZYDIS_MNEMONIC_NEG:
      return {Op::kNeg};
    case ZYDIS_MNEMONIC_NOT:
      return {Op::kNot};
    case ZYDIS_MNEMONIC_SHL:
      return {Op::kShl};
    case ZYDIS_MNEMONIC_SHR:
      return {Op::kShr};
    case ZYDIS_MNEMONIC_SAR:
      return {Op::kSar};
    case ZYDIS_MNEMONIC_ROL:
      return {Op::kRol};
    case ZYDIS_MNEMONIC_ROR:
      return {Op::kRor};
    case ZYDIS_MNEMONIC_MUL:
      return {Op::kMul};
    case ZYDIS_MNEMONIC_IMUL:
      return {Op::kImul};
    case ZYDIS_MNEMONIC_DIV:
      return {Op::kDiv};
    case ZYDIS_MNEMONIC_IDIV:
      return {Op::kIdiv};
    case ZYDIS_MNEMONIC_CMPXCHG:
      return {Op::kCmpxchg};
    case ZYDIS_MNEMONIC_XADD:
      return {Op::kXadd};
    case ZYDIS_MNEMONIC_BT:
      return {Op::kBt};
    case ZYDIS_MNEMONIC_BTS:
      return {Op::kBts};
    case ZYDIS_MNEMONIC_BTR:
      return {Op::kBtr};
    case ZYDIS_MNEMONIC_BTC:
      return {Op::kBtc};
    case ZYDIS_MNEMONIC_BSF:
      return {Op::kBsf};
    case ZYDIS_MNEMONIC_BSR:
      return {Op::kBsr};
    case ZYDIS_MNEMONIC_TZCNT:
      return {Op::kTzcnt};
    case ZYDIS_MNEMONIC_LZCNT:
      return {Op::kLzcnt};
    case ZYDIS_MNEMONIC_POPCNT:
      return {Op::kPopcnt};
    case ZYDIS_MNEMONIC_JMP:
      return {Op::kJmp};
    case ZYDIS_MNEMONIC_CALL:
      return {Op::kCall};
    case ZYDIS_MNEMONIC_RET:
      return {Op::kRet};
    case ZYDIS_MNEMONIC_JCXZ:
    case ZYDIS_MNEMONIC_JECXZ:
    case ZYDIS_MNEMONIC_JRCXZ:
      return {Op::kJrcxz};
    case ZYDIS_MNEMONIC_MOVSB:
    case ZYDIS_MNEMONIC_MOVSW:
    case ZYDIS_MNEMONIC_MOVSD:  // also SSE movsd: refused by its xmm operands
    case ZYDIS_MNEMONIC_MOVSQ:
      return {Op::kMovs};
    case ZYDIS_MNEMONIC_STOSB:
    case ZYDIS_MNEMONIC_STOSW:
    case ZYDIS_MNEMONIC_STOSD:
    case ZYDIS_MNEMONIC_STOSQ:
      return {Op::kStos};
    case ZYDIS_MNEMONIC_CLC:
      return {Op::kClc};
    case ZYDIS_MNEMONIC_STC:
      return {Op::kStc};
    case ZYDIS_MNEMONIC_CMC:
      return {Op::kCmc};
    case ZYDIS_MNEMONIC_CLD:
      return {Op::kCld};
    case ZYDIS_MNEMONIC_STD:
      return {Op::kStd};
    case ZYDIS_MNEMONIC_LAHF:
      return {Op::kLahf};
    case ZYDIS_MNEMONIC_SAHF:
      return {Op::kSahf};
    case ZYDIS_MNEMONIC_NOP:
    case ZYDIS_MNEMONIC_PAUSE:
    case ZYDIS_MNEMONIC_LFENCE:  // one vCPU's own accesses are already in program order
    case ZYDIS_MNEMONIC_SFENCE:
    case ZYDIS_MNEMONIC_ENDBR64:
    case ZYDIS_MNEMONIC_PREFETCHNTA:
    case ZYDIS_MNEMONIC_PREFETCHT0:
    case ZYDIS_MNEMONIC_PREFETCHT1:
    case ZYDIS_MNEMONIC_PREFETCHT2:
    case ZYDIS_MNEMONIC_PREFETCHW:
      return {Op::kNop};
    case ZYDIS_MNEMONIC_MFENCE:
      return {Op::kFence};
    case ZYDIS_MNEMONIC_HLT:
      return {Op::kHlt};
    case ZYDIS_MNEMONIC_IN:
      return {Op::kIn};
    case ZYDIS_MNEMONIC_OUT:
      return {Op::kOut};
    case ZYDIS_MNEMONIC_CPUID:
      return {Op::kCpuid};
    case ZYDIS_MNEMONIC_RDTSC:
      return {Op::kRdtsc};
#define VMFORK_CONDITIONAL(suffix, cc) \
  case ZYDIS_MNEMONIC_J##suffix:       \
    return {Op::kJcc, cc};             \
  case ZYDIS_MNEMONIC_SET##suffix:     \
    return {Op::kSetcc, cc};           \
  case ZYDIS_MNEMONIC_CMOV##suffix:    \
    return {Op::kCmovcc, cc};
      VMFORK_CONDITIONAL(O, C::kO)
      VMFORK_CONDITIONAL(NO, C::kNo)
      VMFORK_CONDITIONAL(B, C::kB)
      VMFORK_CONDITIONAL(NB, C::kNb)
      VMFORK_CONDITIONAL(Z, C::kZ)
      VMFORK_CONDITIONAL(NZ, C::kNz)
      VMFORK_CONDITIONAL(BE, C::kBe)
      VMFORK_CONDITIONAL(NBE, C::kNbe)
      VMFORK_CONDITIONAL(S, C::kS)
      VMFORK_CONDITIONAL(NS, C::kNs)
      VMFORK_CONDITIONAL(P, C::kP)
      VMFORK_CONDITIONAL(NP, C::kNp)
      VMFORK_CONDITIONAL(L, C::kL)
      VMFORK_CONDITIONAL(NL, C::kNl)
      VMFORK_CONDITIONAL(LE, C::kLe)
      VMFORK_CONDITIONAL(NLE, C::kNle)
#undef VMFORK_CONDITIONAL
    default:
      return {};
  }
}

// GPR index (Gpr order) of a general-purpose register, or kNoReg for any other register.
uint8_t gpr_index(ZydisRegister reg, bool& high8) {
  high8 = reg == ZYDIS_REGISTER_AH || reg == ZYDIS_REGISTER_CH || reg == ZYDIS_REGISTER_DH ||
          reg == ZYDIS_REGISTER_BH;
  switch (ZydisRegisterGetClass(reg)) {
    case ZYDIS_REGCLASS_GPR8:
    case ZYDIS_REGCLASS_GPR16:
    case ZYDIS_REGCLASS_GPR32:
    case ZYDIS_REGCLASS_GPR64:
      break;
    default:
      return kNoReg;
  }
  const ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
  return static_cast<uint8_t>(ZydisRegisterGetId(full));
}

uint8_t address_register(ZydisRegister reg, bool& ok) {
  if (reg == ZYDIS_REGISTER_NONE) return kNoReg;
  if (reg == ZYDIS_REGISTER_RIP) return kRipBase;
  bool high8 = false;
  const uint8_t index = gpr_index(reg, high8);
  if (index == kNoReg || high8) ok = false;
  return index;
}

// Converts one visible operand; false when the interpreter does not model it (segment, control,
// vector or x87 registers, far pointers).
bool convert_operand(const ZydisDecodedOperand& in, Operand& out) {
  out.size = static_cast<uint8_t>(in.size / 8);
  switch (in.type) {
    case ZYDIS_OPERAND_TYPE_REGISTER:
      out.kind = OperandKind::kReg;
      out.reg = gpr_index(in.reg.value, out.high8);
      return out.reg != kNoReg;
    case ZYDIS_OPERAND_TYPE_MEMORY: {
      out.kind = OperandKind::kMem;
      if (in.mem.type != ZYDIS_MEMOP_TYPE_MEM && in.mem.type != ZYDIS_MEMOP_TYPE_AGEN) return false;
      bool ok = true;
      out.base = address_register(in.mem.base, ok);
      out.index = address_register(in.mem.index, ok);
      out.scale = in.mem.scale;
      out.value = in.mem.disp.has_displacement ? in.mem.disp.value : 0;
      switch (in.mem.segment) {
        case ZYDIS_REGISTER_FS:
          out.segment = SegmentBase::kFs;
          break;
        case ZYDIS_REGISTER_GS:
          out.segment = SegmentBase::kGs;
          break;
        default:
          out.segment = SegmentBase::kNone;
          break;  // ES, CS, SS, DS: flat, base 0
      }
      return ok;
    }
    case ZYDIS_OPERAND_TYPE_IMMEDIATE:
      out.kind = OperandKind::kImm;
      out.value = in.imm.is_signed ? in.imm.value.s : static_cast<int64_t>(in.imm.value.u);
      return true;
    default:
      return false;
  }
}

}  // namespace

Decoder::Decoder() {
  ZydisDecoderInit(&decoder_, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

DecodeStatus Decoder::decode(const std::byte* bytes, size_t length, DecodedInstruction& out) const {
  ZydisDecodedInstruction insn;
  ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT];
  const ZyanStatus status = ZydisDecoderDecodeFull(&decoder_, bytes, length, &insn, operands);
  if (status == ZYDIS_STATUS_NO_MORE_DATA) return DecodeStatus::kNeedMore;
  if (!ZYAN_SUCCESS(status)) return DecodeStatus::kUndecodable;

  out = DecodedInstruction{};
  out.length = insn.length;
  out.mnemonic = static_cast<uint16_t>(insn.mnemonic);
  out.operand_size = static_cast<uint8_t>(insn.operand_width / 8);
  out.address_size = static_cast<uint8_t>(insn.address_width / 8);
  out.lock = (insn.attributes & ZYDIS_ATTRIB_HAS_LOCK) != 0;
  out.rep = (insn.attributes &
             (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)) != 0;
  if (insn.operand_count_visible > out.operands.size()) return DecodeStatus::kOk;
  out.operand_count = insn.operand_count_visible;
  for (uint8_t i = 0; i < out.operand_count; ++i) {
    if (!convert_operand(operands[i], out.operands[i])) return DecodeStatus::kOk;
  }
  const Mapping mapping = map_mnemonic(insn.mnemonic);
  out.op = mapping.op;
  out.cc = mapping.cc;
  // Zydis names a far return `ret` (and far calls and jumps `call`, `jmp`): they load CS, which
  // the interpreter does not model, and pop or push another amount than the near forms.
  if (insn.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
    out.far_branch = true;
    out.op = Op::kUnsupported;
  }
  // A string instruction's memory operands are hidden; an fs: or gs: prefix applies to its
  // source (SDM vol. 2, MOVS: "The DS segment may be overridden with a segment override prefix,
  // but the ES segment cannot be overridden").
  if ((insn.attributes & ZYDIS_ATTRIB_HAS_SEGMENT_FS) != 0) {
    out.source_segment = SegmentBase::kFs;
  } else if ((insn.attributes & ZYDIS_ATTRIB_HAS_SEGMENT_GS) != 0) {
    out.source_segment = SegmentBase::kGs;
  }
  // A lock prefix where the CPU would raise #UD (register destination, unlockable op) is refused.
  if (out.lock) {
    const bool lockable_op = out.op == Op::kAdd || out.op == Op::kOr || out.op == Op::kAdc ||
                             out.op == Op::kSbb || out.op == Op::kAnd || out.op == Op::kSub ||
                             out.op == Op::kXor || out.op == Op::kInc || out.op == Op::kDec ||
                             out.op == Op::kNeg || out.op == Op::kNot || out.op == Op::kXchg ||
                             out.op == Op::kCmpxchg || out.op == Op::kXadd || out.op == Op::kBts ||
                             out.op == Op::kBtr || out.op == Op::kBtc;
    if (!lockable_op || out.operands[0].kind != OperandKind::kMem) out.op = Op::kUnsupported;
  }
  return DecodeStatus::kOk;
}

const char* mnemonic_name(uint16_t mnemonic) {
  const char* name = ZydisMnemonicGetString(static_cast<ZydisMnemonic>(mnemonic));
  return name != nullptr ? name : "(invalid)";
}

}  // namespace vmfork::soft
