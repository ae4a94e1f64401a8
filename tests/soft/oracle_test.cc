// Every supported instruction form, per operand size, run natively and in the interpreter from
// the same random state (deterministic seed, edge values included); all GPRs, the defined status
// flags and memory must agree.
#include <Zydis/Zydis.h>
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <random>

#include "tests/soft/native_harness.h"

namespace vmfork::soft::testing {
namespace {

constexpr uint64_t kCf = 0x1, kPf = 0x4, kAf = 0x10, kZf = 0x40, kSf = 0x80, kOf = 0x800;
constexpr uint64_t kArith = kCf | kPf | kAf | kZf | kSf | kOf;

// Registers operands may use: not rsp (stack), rsi (memory base), rdi (memory index).
constexpr uint8_t kFreeRegs[] = {0, 1, 2, 3, 5, 8, 9, 10, 11, 12, 13, 14, 15};
constexpr uint8_t kBase = 6;
constexpr uint8_t kIndex = 7;

ZydisRegister gpr(unsigned size, uint8_t id) {
  static constexpr ZydisRegister k8[] = {
      ZYDIS_REGISTER_AL,   ZYDIS_REGISTER_CL,   ZYDIS_REGISTER_DL,   ZYDIS_REGISTER_BL,
      ZYDIS_REGISTER_SPL,  ZYDIS_REGISTER_BPL,  ZYDIS_REGISTER_SIL,  ZYDIS_REGISTER_DIL,
      ZYDIS_REGISTER_R8B,  ZYDIS_REGISTER_R9B,  ZYDIS_REGISTER_R10B, ZYDIS_REGISTER_R11B,
      ZYDIS_REGISTER_R12B, ZYDIS_REGISTER_R13B, ZYDIS_REGISTER_R14B, ZYDIS_REGISTER_R15B};
  switch (size) {
    case 1:
      return k8[id];
    case 2:
      return ZydisRegisterEncode(ZYDIS_REGCLASS_GPR16, id);
    case 4:
      return ZydisRegisterEncode(ZYDIS_REGCLASS_GPR32, id);
    default:
      return ZydisRegisterEncode(ZYDIS_REGCLASS_GPR64, id);
  }
}

ZydisEncoderOperand reg_op(ZydisRegister r) {
  ZydisEncoderOperand o{};
  o.type = ZYDIS_OPERAND_TYPE_REGISTER;
  o.reg.value = r;
  return o;
}
ZydisEncoderOperand imm_op(int64_t v) {
  ZydisEncoderOperand o{};
  o.type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
  o.imm.s = v;
  return o;
}

class OracleTest : public ::testing::Test {
 protected:
  std::mt19937_64 rng{0x5eed};

  uint64_t random_value() {
    static constexpr uint64_t kEdges[] = {0,
                                          1,
                                          ~0ull,
                                          0x7f,
                                          0x80,
                                          0xff,
                                          0x7fff,
                                          0x8000,
                                          0xffff,
                                          0x7fffffff,
                                          0x80000000,
                                          0xffffffff,
                                          0x7fffffffffffffff,
                                          0x8000000000000000};
    switch (rng() % 4) {
      case 0:
        return kEdges[rng() % std::size(kEdges)];
      case 1:
        return kEdges[rng() % std::size(kEdges)] ^ (rng() & 0xffffffff00000000);
      case 2:
        return rng() % 64;
      default:
        return rng();
    }
  }
  uint8_t random_reg() { return kFreeRegs[rng() % std::size(kFreeRegs)]; }

  // A random register file, flags, memory operand registers and data buffer.
  MachineState random_state() {
    MachineState s;
    for (auto& r : s.gpr)
      r = random_value();
    s.gpr[4] = harness.data_address() + NativeHarness::kDataBytes - 0x100;  // rsp
    s.gpr[kBase] = harness.data_address() + 0xe00 + rng() % 0x400;
    s.gpr[kIndex] = rng() % 32;
    s.rflags = 0x202 | (rng() & kArith);
    for (size_t i = 0; i < NativeHarness::kDataBytes; ++i) {
      harness.data()[i] = std::byte{static_cast<uint8_t>(rng())};
    }
    return s;
  }

  // A random memory operand over the data buffer; `*address` is where it points for `s`.
  ZydisEncoderOperand mem_op(unsigned size, const MachineState& s, uint64_t* address) {
    ZydisEncoderOperand o{};
    o.type = ZYDIS_OPERAND_TYPE_MEMORY;
    o.mem.size = static_cast<uint16_t>(size);
    o.mem.base = ZYDIS_REGISTER_RSI;
    o.mem.displacement = static_cast<int64_t>(rng() % 256) - 128;
    uint64_t a = s.gpr[kBase] + static_cast<uint64_t>(o.mem.displacement);
    if (rng() % 2 != 0) {
      static constexpr uint8_t kScales[] = {1, 2, 4, 8};
      o.mem.index = ZYDIS_REGISTER_RDI;
      o.mem.scale = kScales[rng() % 4];
      a += s.gpr[kIndex] * o.mem.scale;
    }
    if (address != nullptr) *address = a;
    return o;
  }

  static std::optional<std::vector<uint8_t>> encode(ZydisMnemonic m,
                                                    std::initializer_list<ZydisEncoderOperand> ops,
                                                    ZydisInstructionAttributes prefixes = 0) {
    ZydisEncoderRequest req;
    std::memset(&req, 0, sizeof req);
    req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
    req.mnemonic = m;
    req.prefixes = prefixes;
    req.operand_count = static_cast<ZyanU8>(ops.size());
    size_t i = 0;
    for (const auto& o : ops)
      req.operands[i++] = o;
    std::vector<uint8_t> out(ZYDIS_MAX_INSTRUCTION_LENGTH);
    ZyanUSize length = out.size();
    if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, out.data(), &length)))
      return std::nullopt;
    out.resize(length);
    return out;
  }

  // Runs `code` both ways and compares; `undefined` flags are not compared.
  void check(const std::vector<uint8_t>& code, const MachineState& in, uint64_t undefined = 0) {
    ++checked;
    const NativeHarness::Outcome o = harness.run(code, in);
    const std::string what = "snippet " + hex_bytes(code);
    ASSERT_EQ(o.exit.reason, ExitReason::kHalted) << what << ": " << o.exit.message;
    for (unsigned r = 0; r < 16; ++r) {
      ASSERT_EQ(o.interpreted.gpr[r], o.native.gpr[r]) << what << " register " << r;
    }
    const uint64_t mask = kArith & ~undefined;
    ASSERT_EQ(o.interpreted.rflags & mask, o.native.rflags & mask)
        << what << " flags in " << std::hex << in.rflags;
    ASSERT_EQ(o.memory_mismatch, "") << what;
  }
  void check(const std::optional<std::vector<uint8_t>>& code, const MachineState& in,
             uint64_t undefined = 0) {
    if (!code) {
      ++unencodable;
      return;
    }
    check(*code, in, undefined);
  }

  void TearDown() override {
    EXPECT_GT(checked, 0u);
    EXPECT_LT(unencodable, checked / 4 + 1) << "too many forms failed to encode";
  }

  NativeHarness harness;
  size_t checked = 0;
  size_t unencodable = 0;
};

constexpr unsigned kSizes[] = {1, 2, 4, 8};
constexpr int kRounds = 40;

TEST_F(OracleTest, BinaryAluAllFormsAndSizes) {
  const ZydisMnemonic ops[] = {ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR,  ZYDIS_MNEMONIC_ADC,
                               ZYDIS_MNEMONIC_SBB, ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB,
                               ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP, ZYDIS_MNEMONIC_TEST};
  for (ZydisMnemonic m : ops) {
    for (unsigned size : kSizes) {
      for (int i = 0; i < kRounds; ++i) {
        MachineState s = random_state();
        const auto r1 = gpr(size, random_reg());
        const auto r2 = gpr(size, random_reg());
        const int64_t imm =
            static_cast<int64_t>(sign_extend(random_value(), size == 8 ? 32 : size * 8));
        uint64_t address = 0;
        const auto mem = mem_op(size, s, &address);
        const uint64_t af = (m == ZYDIS_MNEMONIC_AND || m == ZYDIS_MNEMONIC_OR ||
                             m == ZYDIS_MNEMONIC_XOR || m == ZYDIS_MNEMONIC_TEST)
                                ? kAf
                                : 0;
        check(encode(m, {reg_op(r1), reg_op(r2)}), s, af);
        check(encode(m, {reg_op(r1), imm_op(imm)}), s, af);
        check(encode(m, {mem, reg_op(r2)}), s, af);
        check(encode(m, {mem, imm_op(imm)}), s, af);
        if (m != ZYDIS_MNEMONIC_TEST) check(encode(m, {reg_op(r1), mem}), s, af);
        if (m != ZYDIS_MNEMONIC_CMP && m != ZYDIS_MNEMONIC_TEST) {
          check(encode(m, {mem, reg_op(r2)}, ZYDIS_ATTRIB_HAS_LOCK), s, af);
          check(encode(m, {mem, imm_op(imm)}, ZYDIS_ATTRIB_HAS_LOCK), s, af);
        }
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_F(OracleTest, UnaryAluAllFormsAndSizes) {
  const ZydisMnemonic ops[] = {ZYDIS_MNEMONIC_INC, ZYDIS_MNEMONIC_DEC, ZYDIS_MNEMONIC_NEG,
                               ZYDIS_MNEMONIC_NOT};
  for (ZydisMnemonic m : ops) {
    for (unsigned size : kSizes) {
      for (int i = 0; i < kRounds; ++i) {
        MachineState s = random_state();
        uint64_t address = 0;
        const auto mem = mem_op(size, s, &address);
        check(encode(m, {reg_op(gpr(size, random_reg()))}), s);
        check(encode(m, {mem}), s);
        check(encode(m, {mem}, ZYDIS_ATTRIB_HAS_LOCK), s);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_F(OracleTest, ShiftsAndRotatesWithCountMasking) {
  const ZydisMnemonic ops[] = {ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR, ZYDIS_MNEMONIC_SAR,
                               ZYDIS_MNEMONIC_ROL, ZYDIS_MNEMONIC_ROR};
  for (ZydisMnemonic m : ops) {
    for (unsigned size : kSizes) {
      for (int i = 0; i < kRounds * 2; ++i) {
        MachineState s = random_state();
        const unsigned count = i < 8 ? static_cast<unsigned>(i) : static_cast<unsigned>(rng() % 70);
        s.gpr[1] = (s.gpr[1] & ~uint64_t{0xff}) | count;  // cl
        const unsigned masked = count & (size == 8 ? 63 : 31);
        const bool rotate = m == ZYDIS_MNEMONIC_ROL || m == ZYDIS_MNEMONIC_ROR;
        uint64_t undefined = 0;
        if (masked != 0 && !rotate) undefined |= kAf;
        if (masked > 1) undefined |= kOf;
        if (!rotate && masked >= size * 8) undefined |= kCf;
        uint8_t r = random_reg();
        if (r == 1) r = 0;  // not cl itself
        const auto dst = gpr(size, r);
        check(encode(m, {reg_op(dst), imm_op(count)}), s, undefined);
        check(encode(m, {reg_op(dst), reg_op(ZYDIS_REGISTER_CL)}), s, undefined);
        check(encode(m, {mem_op(size, s, nullptr), reg_op(ZYDIS_REGISTER_CL)}), s, undefined);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_F(OracleTest, MultiplyAllForms) {
  const uint64_t undefined = kSf | kZf | kAf | kPf;
  for (unsigned size : kSizes) {
    for (int i = 0; i < kRounds; ++i) {
      MachineState s = random_state();
      const auto src = gpr(size, random_reg());
      check(encode(ZYDIS_MNEMONIC_MUL, {reg_op(src)}), s, undefined);
      check(encode(ZYDIS_MNEMONIC_IMUL, {reg_op(src)}), s, undefined);
      check(encode(ZYDIS_MNEMONIC_MUL, {mem_op(size, s, nullptr)}), s, undefined);
      check(encode(ZYDIS_MNEMONIC_IMUL, {mem_op(size, s, nullptr)}), s, undefined);
      if (size == 1) continue;
      const auto dst = gpr(size, random_reg());
      const int64_t imm = static_cast<int64_t>(sign_extend(random_value(), size == 2 ? 16 : 32));
      check(encode(ZYDIS_MNEMONIC_IMUL, {reg_op(dst), reg_op(src)}), s, undefined);
      check(encode(ZYDIS_MNEMONIC_IMUL, {reg_op(dst), mem_op(size, s, nullptr)}), s, undefined);
      check(encode(ZYDIS_MNEMONIC_IMUL, {reg_op(dst), reg_op(src), imm_op(imm)}), s, undefined);
      check(encode(ZYDIS_MNEMONIC_IMUL, {reg_op(dst), mem_op(size, s, nullptr), imm_op(imm)}), s,
            undefined);
      if (HasFatalFailure()) return;
    }
  }
}

// The quotient must fit, or the native run would fault: choose the high half accordingly.
TEST_F(OracleTest, DivideWithoutFault) {
  for (unsigned size : kSizes) {
    const unsigned bits = size * 8;
    for (int i = 0; i < kRounds * 2; ++i) {
      MachineState s = random_state();
      uint8_t r = random_reg();
      while (r == 0 || r == 2)
        r = random_reg();
      uint64_t divisor = random_value() & width_mask(bits);
      if (divisor == 0) divisor = 7;
      s.gpr[r] = (s.gpr[r] & ~width_mask(bits)) | divisor;
      const auto src = gpr(size, r);
      // Unsigned: high part below the divisor.
      MachineState u = s;
      const uint64_t high = (rng() & width_mask(bits)) % divisor;
      if (size == 1) {
        u.gpr[0] = (u.gpr[0] & ~uint64_t{0xff00}) | (high << 8);
      } else {
        u.gpr[2] = (u.gpr[2] & ~width_mask(bits)) | high;
      }
      check(encode(ZYDIS_MNEMONIC_DIV, {reg_op(src)}), u, kArith);
      // Signed: the high part is the sign extension of the low part (no overflow unless
      // dividing the most negative value by -1).
      MachineState v = s;
      const bool negative = msb(v.gpr[0], size == 1 ? 8 : bits);
      if (size == 1) {
        v.gpr[0] = (v.gpr[0] & ~uint64_t{0xff00}) | (negative ? 0xff00 : 0);
      } else {
        v.gpr[2] = (v.gpr[2] & ~width_mask(bits)) | (negative ? width_mask(bits) : 0);
      }
      const bool overflow =
          (v.gpr[0] & width_mask(bits)) == sign_bit(bits) && divisor == width_mask(bits);
      if (!overflow) check(encode(ZYDIS_MNEMONIC_IDIV, {reg_op(src)}), v, kArith);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_F(OracleTest, MovesAndExtensions) {
  for (unsigned size : kSizes) {
    for (int i = 0; i < kRounds; ++i) {
      MachineState s = random_state();
      const auto r1 = gpr(size, random_reg());
      const auto r2 = gpr(size, random_reg());
      const int64_t imm = static_cast<int64_t>(random_value() & width_mask(size * 8));
      check(encode(ZYDIS_MNEMONIC_MOV, {reg_op(r1), reg_op(r2)}), s);
      check(encode(ZYDIS_MNEMONIC_MOV, {reg_op(r1), mem_op(size, s, nullptr)}), s);
      check(encode(ZYDIS_MNEMONIC_MOV, {mem_op(size, s, nullptr), reg_op(r2)}), s);
      check(encode(ZYDIS_MNEMONIC_MOV, {reg_op(r1), imm_op(imm)}), s);
      check(encode(ZYDIS_MNEMONIC_MOV,
                   {mem_op(size, s, nullptr), imm_op(static_cast<int64_t>(sign_extend(
                                                  random_value(), size == 8 ? 32 : size * 8)))}),
            s);
      for (unsigned from : {1u, 2u, 4u}) {
        if (from >= size) continue;
        const auto src = gpr(from, random_reg());
        if (from < 4) {
          check(encode(ZYDIS_MNEMONIC_MOVZX, {reg_op(r1), reg_op(src)}), s);
          check(encode(ZYDIS_MNEMONIC_MOVZX, {reg_op(r1), mem_op(from, s, nullptr)}), s);
          check(encode(ZYDIS_MNEMONIC_MOVSX, {reg_op(r1), reg_op(src)}), s);
          check(encode(ZYDIS_MNEMONIC_MOVSX, {reg_op(r1), mem_op(from, s, nullptr)}), s);
        } else {
          check(encode(ZYDIS_MNEMONIC_MOVSXD, {reg_op(r1), reg_op(src)}), s);
          check(encode(ZYDIS_MNEMONIC_MOVSXD, {reg_op(r1), mem_op(from, s, nullptr)}), s);
        }
      }
      if (size >= 2) check(encode(ZYDIS_MNEMONIC_LEA, {reg_op(r1), mem_op(size, s, nullptr)}), s);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_F(OracleTest, HighByteRegisters) {
  const ZydisRegister high[] = {ZYDIS_REGISTER_AH, ZYDIS_REGISTER_CH, ZYDIS_REGISTER_DH,
                                ZYDIS_REGISTER_BH, ZYDIS_REGISTER_AL, ZYDIS_REGISTER_BL};
  for (int i = 0; i < kRounds * 4; ++i) {
    MachineState s = random_state();
    const auto a = high[rng() % std::size(high)];
    const auto b = high[rng() % std::size(high)];
    check(encode(ZYDIS_MNEMONIC_ADD, {reg_op(a), reg_op(b)}), s);
    check(encode(ZYDIS_MNEMONIC_MOV, {reg_op(a), reg_op(b)}), s);
    check(encode(ZYDIS_MNEMONIC_XCHG, {reg_op(a), reg_op(b)}), s);
    check(encode(ZYDIS_MNEMONIC_MOVZX, {reg_op(ZYDIS_REGISTER_ECX), reg_op(a)}), s);
    if (HasFatalFailure()) return;
  }
}

TEST_F(OracleTest, ConditionalMovesAndSets) {
  for (int cc = 0; cc < 16; ++cc) {
    for (unsigned size : {2u, 4u, 8u}) {
      for (int i = 0; i < 8; ++i) {
        MachineState s = random_state();
        // cmovcc r, r/m: 0F 40+cc; setcc r/m8: 0F 90+cc (built from the encoder's cmovo/seto).
        auto cmov = encode(ZYDIS_MNEMONIC_CMOVO,
                           {reg_op(gpr(size, random_reg())), reg_op(gpr(size, random_reg()))});
        auto cmov_mem = encode(ZYDIS_MNEMONIC_CMOVO,
                               {reg_op(gpr(size, random_reg())), mem_op(size, s, nullptr)});
        auto set = encode(ZYDIS_MNEMONIC_SETO, {reg_op(gpr(1, random_reg()))});
        auto set_mem = encode(ZYDIS_MNEMONIC_SETO, {mem_op(1, s, nullptr)});
        for (auto* code : {&cmov, &cmov_mem, &set, &set_mem}) {
          ASSERT_TRUE(code->has_value());
          for (auto& byte : **code) {
            if (byte == 0x40 || byte == 0x90) {
              byte = static_cast<uint8_t>(byte + cc);
              break;
            }
          }
          check(*code, s);
        }
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_F(OracleTest, ExchangesAndAtomics) {
  for (unsigned size : kSizes) {
    for (int i = 0; i < kRounds; ++i) {
      MachineState s = random_state();
      uint64_t address = 0;
      const auto mem = mem_op(size, s, &address);
      if (rng() % 2 != 0) {  // make cmpxchg succeed
        uint64_t current = 0;
        std::memcpy(&current, harness.data() + (address - harness.data_address()), size);
        s.gpr[0] = (s.gpr[0] & ~width_mask(size * 8)) | current;
      }
      const auto r1 = gpr(size, random_reg());
      const auto r2 = gpr(size, random_reg());
      check(encode(ZYDIS_MNEMONIC_XCHG, {reg_op(r1), reg_op(r2)}), s);
      check(encode(ZYDIS_MNEMONIC_XADD, {reg_op(r1), reg_op(r2)}), s);
      check(encode(ZYDIS_MNEMONIC_XADD, {mem, reg_op(r2)}), s);
      check(encode(ZYDIS_MNEMONIC_CMPXCHG, {mem, reg_op(r2)}), s);
      check(encode(ZYDIS_MNEMONIC_XCHG, {mem, reg_op(r2)}), s);
      check(encode(ZYDIS_MNEMONIC_XADD, {mem, reg_op(r2)}, ZYDIS_ATTRIB_HAS_LOCK), s);
      check(encode(ZYDIS_MNEMONIC_CMPXCHG, {mem, reg_op(r2)}, ZYDIS_ATTRIB_HAS_LOCK), s);
      s.gpr[0] = s.gpr[kFreeRegs[3]];  // rax equal to rbx: the register cmpxchg succeeds
      check(encode(ZYDIS_MNEMONIC_CMPXCHG, {reg_op(gpr(size, 3)), reg_op(r2)}), s);
      check(encode(ZYDIS_MNEMONIC_CMPXCHG, {reg_op(r1), reg_op(r2)}), s);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_F(OracleTest, BitTestsAndScans) {
  const uint64_t undefined = kOf | kSf | kAf | kPf;
  const ZydisMnemonic bts[] = {ZYDIS_MNEMONIC_BT, ZYDIS_MNEMONIC_BTS, ZYDIS_MNEMONIC_BTR,
                               ZYDIS_MNEMONIC_BTC};
  for (unsigned size : {2u, 4u, 8u}) {
    for (int i = 0; i < kRounds; ++i) {
      MachineState s = random_state();
      uint8_t r = random_reg();
      s.gpr[r] = rng() % 200 - 100;  // a small signed bit offset for the memory forms
      const auto offset = gpr(size, r);
      const auto r1 = gpr(size, random_reg());
      uint64_t address = 0;
      const auto mem = mem_op(size, s, &address);
      for (ZydisMnemonic m : bts) {
        check(encode(m, {reg_op(r1), reg_op(offset)}), s, undefined);
        check(encode(m, {reg_op(r1), imm_op(static_cast<int64_t>(rng() % 256))}), s, undefined);
        check(encode(m, {mem, imm_op(static_cast<int64_t>(rng() % 256))}), s, undefined);
        check(encode(m, {mem, reg_op(offset)}), s, undefined);
        if (m != ZYDIS_MNEMONIC_BT) {
          check(encode(m, {mem, imm_op(static_cast<int64_t>(rng() % 256))}, ZYDIS_ATTRIB_HAS_LOCK),
                s, undefined);
          check(encode(m, {mem, reg_op(offset)}, ZYDIS_ATTRIB_HAS_LOCK), s, undefined);
        }
      }
      // Scans: sources are made nonzero for bsf/bsr (zero leaves the destination undefined).
      uint8_t src_reg = random_reg();
      const auto src = gpr(size, src_reg);
      check(encode(ZYDIS_MNEMONIC_POPCNT, {reg_op(r1), reg_op(src)}), s);
      check(encode(ZYDIS_MNEMONIC_TZCNT, {reg_op(r1), reg_op(src)}), s, undefined);
      check(encode(ZYDIS_MNEMONIC_LZCNT, {reg_op(r1), reg_op(src)}), s, undefined);
      if ((s.gpr[src_reg] & width_mask(size * 8)) == 0) s.gpr[src_reg] |= 0x100;
      check(encode(ZYDIS_MNEMONIC_BSF, {reg_op(r1), reg_op(src)}), s, undefined | kCf);
      check(encode(ZYDIS_MNEMONIC_BSR, {reg_op(r1), reg_op(src)}), s, undefined | kCf);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_F(OracleTest, AccumulatorExtensionsAndStack) {
  const ZydisMnemonic simple[] = {ZYDIS_MNEMONIC_CBW,  ZYDIS_MNEMONIC_CWDE, ZYDIS_MNEMONIC_CDQE,
                                  ZYDIS_MNEMONIC_CWD,  ZYDIS_MNEMONIC_CDQ,  ZYDIS_MNEMONIC_CQO,
                                  ZYDIS_MNEMONIC_CLC,  ZYDIS_MNEMONIC_STC,  ZYDIS_MNEMONIC_CMC,
                                  ZYDIS_MNEMONIC_LAHF, ZYDIS_MNEMONIC_SAHF, ZYDIS_MNEMONIC_NOP};
  for (int i = 0; i < kRounds; ++i) {
    MachineState s = random_state();
    for (ZydisMnemonic m : simple)
      check(encode(m, {}), s);
    const auto r64 = gpr(8, random_reg());
    check(encode(ZYDIS_MNEMONIC_BSWAP, {reg_op(gpr(4, random_reg()))}), s);
    check(encode(ZYDIS_MNEMONIC_BSWAP, {reg_op(r64)}), s);
    check(encode(ZYDIS_MNEMONIC_PUSH, {reg_op(r64)}), s);
    check(encode(ZYDIS_MNEMONIC_PUSH, {reg_op(gpr(2, random_reg()))}), s);
    check(encode(ZYDIS_MNEMONIC_PUSH,
                 {imm_op(static_cast<int64_t>(sign_extend(random_value(), 32)))}),
          s);
    check(encode(ZYDIS_MNEMONIC_PUSH, {mem_op(8, s, nullptr)}), s);
    check(encode(ZYDIS_MNEMONIC_POP, {reg_op(r64)}), s);
    check(encode(ZYDIS_MNEMONIC_POP, {mem_op(8, s, nullptr)}), s);
    // Multi-byte nops, leave, and a push/pop of rsp itself.
    check(std::vector<uint8_t>{0x0f, 0x1f, 0x44, 0x00, 0x00, 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00,
                               0x00, 0x00, 0x00, 0xf3, 0x90, 0x0f, 0xae, 0xf0},
          s);
    MachineState frame = s;
    frame.gpr[5] = frame.gpr[4] - 0x40;                    // rbp inside the stack
    check(std::vector<uint8_t>{0xc9, 0x54, 0x5c}, frame);  // leave; push rsp; pop rsp
    if (HasFatalFailure()) return;
  }
}

TEST_F(OracleTest, BranchesCallsAndLoops) {
  // All 16 jcc (short and near), each with a taken and a not-taken outcome.
  for (int i = 0; i < kRounds; ++i) {
    MachineState s = random_state();
    for (uint8_t cc = 0; cc < 16; ++cc) {
      // jcc +3; mov al, 1 (2 bytes) ; nop -> al tells whether it was taken
      check(std::vector<uint8_t>{static_cast<uint8_t>(0x70 + cc), 0x02, 0xb0, 0x01, 0x90}, s);
      check(std::vector<uint8_t>{0x0f, static_cast<uint8_t>(0x80 + cc), 0x02, 0, 0, 0, 0xb0, 0x01,
                                 0x90},
            s);
    }
  }
  MachineState s = random_state();
  s.gpr[1] = 100;
  // loop: add rax, rcx; dec rcx; jnz loop
  check(std::vector<uint8_t>{0x48, 0x01, 0xc8, 0x48, 0xff, 0xc9, 0x75, 0xf8}, s);
  // call +1 (over an int3-free byte); target: pop rbx (the return address); jmp over; ret form:
  // call f; jmp end; f: mov eax, 5; ret; end:
  check(std::vector<uint8_t>{0xe8, 0x02, 0, 0, 0, 0xeb, 0x06, 0xb8, 0x05, 0, 0, 0, 0xc3}, s);
  // call [rsi-relative] through a register: lea rbx,[rip+3]; call rbx; jmp +1; ret
  check(std::vector<uint8_t>{0x48, 0x8d, 0x1d, 0x04, 0, 0, 0, 0xff, 0xd3, 0xeb, 0x01, 0xc3}, s);
  // jrcxz not taken / taken
  s.gpr[1] = 0;
  check(std::vector<uint8_t>{0xe3, 0x02, 0xb0, 0x01, 0x90}, s);
  s.gpr[1] = 5;
  check(std::vector<uint8_t>{0xe3, 0x02, 0xb0, 0x01, 0x90}, s);
}

TEST_F(OracleTest, RipRelativeAddressing) {
  for (int i = 0; i < kRounds; ++i) {
    MachineState s = random_state();
    for (size_t b = 0; b < NativeHarness::kRipDataBytes; ++b) {
      harness.rip_data()[b] = std::byte{static_cast<uint8_t>(rng())};
    }
    // disp32 relative to the end of each instruction, targeting the RIP data area.
    const uint64_t start = harness.snippet_address();
    const uint64_t target = harness.code_address() + NativeHarness::kRipDataOffset + rng() % 0xf0;
    auto disp = [&](uint64_t end) { return static_cast<uint32_t>(target - end); };
    std::vector<uint8_t> code = {0x48, 0x8b, 0x05, 0, 0, 0, 0,  // mov rax, [rip+d]
                                 0x01, 0x0d, 0,    0, 0, 0};    // add [rip+d], ecx
    const uint32_t d1 = disp(start + 7);
    const uint32_t d2 = disp(start + 13);
    std::memcpy(&code[3], &d1, 4);
    std::memcpy(&code[9], &d2, 4);
    check(code, s);
  }
}

TEST_F(OracleTest, RepStringsBothDirections) {
  for (int i = 0; i < kRounds; ++i) {
    MachineState s = random_state();
    const uint64_t data = harness.data_address();
    s.gpr[6] = data + rng() % 0x800;          // rsi
    s.gpr[7] = data + 0x600 + rng() % 0x900;  // rdi (overlaps rsi's range sometimes)
    s.gpr[1] = rng() % 64;                    // rcx
    for (uint8_t op : {uint8_t{0xa4}, uint8_t{0xa5}, uint8_t{0xaa},
                       uint8_t{0xab}}) {  // movsb, movsd, stosb, stosd
      check(std::vector<uint8_t>{0xf3, op}, s);
      check(std::vector<uint8_t>{0xf3, 0x48, static_cast<uint8_t>(op | 1)}, s);  // q forms
      check(std::vector<uint8_t>{op}, s);
      // std; rep op; cld
      MachineState down = s;
      down.gpr[6] += 0x200;
      down.gpr[7] += 0x200;
      check(std::vector<uint8_t>{0xfd, 0xf3, op, 0xfc}, down);
    }
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace vmfork::soft::testing
