// Exits, the environment boundary and the decoded-instruction cache, one behaviour each.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "tests/soft/flat_environment.h"
#include "vmm/soft/interpreter.h"

namespace vmfork::soft::testing {
namespace {

constexpr uint64_t kCode = 0x100000;
constexpr uint64_t kData = 0x200000;

class InterpreterTest : public ::testing::Test {
 protected:
  InterpreterTest() {
    env.add_region(kCode, 4);
    env.add_region(kData, 4);
    state.rip = kCode;
    state.reg(Gpr::kRsp) = kData + 4 * 4096;
  }
  void load(std::vector<uint8_t> code, uint64_t at = kCode) {
    env.store(at, code.data(), code.size());
  }
  RunExit run(uint64_t limit = 1000) { return interpreter.run(state, env, limit); }

  FlatEnvironment env;
  CpuState state;
  Interpreter interpreter;
};

TEST_F(InterpreterTest, HltEndsTheRunAfterTheInstruction) {
  load({0x90, 0xf4});
  const RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kHalted);
  EXPECT_EQ(e.instructions, 2u);
  EXPECT_EQ(state.rip, kCode + 2);
}

TEST_F(InterpreterTest, UnsupportedInstructionNamesItAndLeavesRipAtIt) {
  load({0x90, 0x0f, 0x0b});  // nop; ud2
  const RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kUnsupported);
  EXPECT_EQ(e.message, "unsupported instruction ud2 at RIP 0x100001");
  EXPECT_EQ(state.rip, kCode + 1);
}

TEST_F(InterpreterTest, AccessOutsideRamIsAMemoryFaultAtTheInstruction) {
  load({0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0x40});  // mov rax, [0x40000000]
  state.reg(Gpr::kRax) = 7;
  const RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kMemoryFault);
  EXPECT_EQ(e.cause, ErrorCode::kOutsideRam);
  EXPECT_NE(e.message.find("RIP 0x100000"), std::string::npos) << e.message;
  EXPECT_EQ(state.rip, kCode);
  EXPECT_EQ(state.reg(Gpr::kRax), 7u);
}

TEST_F(InterpreterTest, DivideByZeroAndQuotientOverflowAreDivideErrors) {
  load({0x48, 0xf7, 0xf1});  // div rcx
  state.reg(Gpr::kRcx) = 0;
  RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kDivideError);
  EXPECT_NE(e.message.find("by zero"), std::string::npos) << e.message;
  EXPECT_EQ(state.rip, kCode);
  state.reg(Gpr::kRcx) = 1;
  state.reg(Gpr::kRdx) = 1;  // rdx:rax / 1 does not fit in rax
  e = run();
  EXPECT_EQ(e.reason, ExitReason::kDivideError);
  EXPECT_NE(e.message.find("overflow"), std::string::npos) << e.message;
  load({0x48, 0xf7, 0xf9});  // idiv rcx: INT64_MIN / -1
  interpreter.flush_decoded();
  state.reg(Gpr::kRax) = 0x8000000000000000;
  state.reg(Gpr::kRdx) = ~uint64_t{0};
  state.reg(Gpr::kRcx) = ~uint64_t{0};
  EXPECT_EQ(run().reason, ExitReason::kDivideError);
}

TEST_F(InterpreterTest, InstructionLimitStopsAtABoundary) {
  load({0xeb, 0xfe});  // jmp $
  const RunExit e = run(50);
  EXPECT_EQ(e.reason, ExitReason::kInstructionLimit);
  EXPECT_EQ(e.instructions, 50u);
  EXPECT_EQ(state.rip, kCode);
}

TEST_F(InterpreterTest, CheckIsCalledOnEveryTakenBranchAndCanStop) {
  load({0xeb, 0xfe});
  env.stop_at_check = 11;  // run() entry plus ten taken branches
  const RunExit e = run(1000);
  EXPECT_EQ(e.reason, ExitReason::kStopped);
  EXPECT_EQ(e.instructions, 10u);
}

TEST_F(InterpreterTest, PortOutAndInReachTheEnvironment) {
  // mov al, 'x'; mov dx, 0x3f8; out dx, al; in eax, 0x60; mov eax, 3; out 0xf4, eax; hlt
  load({0xb0, 'x', 0x66, 0xba, 0xf8, 0x03, 0xee, 0xe5, 0x60, 0xb8, 3, 0, 0, 0, 0xe7, 0xf4, 0xf4});
  env.port_in_value = 0x12345678;
  const RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kStopped);  // port 0xf4 asks to stop
  ASSERT_EQ(env.outs.size(), 2u);
  EXPECT_EQ(env.outs[0].port, 0x3f8);
  EXPECT_EQ(env.outs[0].size, 1);
  EXPECT_EQ(env.outs[0].value, 'x');
  EXPECT_EQ(env.outs[1].port, 0xf4);
  EXPECT_EQ(env.outs[1].size, 4);
  EXPECT_EQ(env.outs[1].value, 3u);
  ASSERT_EQ(env.ins.size(), 1u);
  EXPECT_EQ(env.ins[0].port, 0x60);
  EXPECT_EQ(state.rip, kCode + 16);  // after the out, at the hlt
}

TEST_F(InterpreterTest, PortErrorEndsTheRun) {
  load({0x66, 0xba, 0xad, 0x0b, 0xee});  // mov dx, 0xbad; out dx, al
  const RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kIoError);
  EXPECT_EQ(state.rip, kCode + 4);
}

TEST_F(InterpreterTest, SelfModifyingCodeIsRedecoded) {
  // mov byte [rip+1], 0xf4 ... overwrites the following nop with hlt: C6 05 disp32 imm8
  load({0xc6, 0x05, 0x00, 0x00, 0x00, 0x00, 0xf4, 0x90, 0x90, 0x0f, 0x0b});
  // First run decodes the nops (up to ud2).
  CpuState saved = state;
  uint8_t nop = 0x90;
  env.store(kCode, &nop, 1);  // disable the store: nop; then 6 bytes of garbage -> decode anew
  load({0xeb, 0x05, 0, 0, 0, 0, 0, 0x90, 0x90, 0x0f, 0x0b});  // jmp to the nops
  EXPECT_EQ(run().reason, ExitReason::kUnsupported);
  // Now the store runs first and turns the cached nop at +7 into hlt.
  load({0xc6, 0x05, 0x00, 0x00, 0x00, 0x00, 0xf4});
  state = saved;
  interpreter.flush_decoded();
  env.generation++;
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  EXPECT_EQ(state.rip, kCode + 8);
}

TEST_F(InterpreterTest, FlushGenerationDropsDecodedInstructions) {
  load({0x90, 0xf4});
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  load({0x0f, 0x0b});  // changed behind the interpreter's back (no guest write)
  state.rip = kCode;
  EXPECT_EQ(run().reason, ExitReason::kHalted);  // still the cached nop; hlt
  env.generation++;
  state.rip = kCode;
  EXPECT_EQ(run().reason, ExitReason::kUnsupported);
}

TEST_F(InterpreterTest, InstructionSpanningTwoPagesIsFetchedFromBoth) {
  state.rip = kCode + 4096 - 3;
  load({0x48, 0xc7, 0xc0, 0x2a, 0, 0, 0, 0xf4}, state.rip);  // mov rax, 42; hlt
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  EXPECT_EQ(state.reg(Gpr::kRax), 42u);
}

// lock add [rbx], rax; hlt
const std::vector<uint8_t> kLockAdd = {0xf0, 0x48, 0x01, 0x03, 0xf4};

TEST_F(InterpreterTest, AlignedLockedAddIsOneHostAtomicWithNoExclusiveSection) {
  load(kLockAdd);
  state.reg(Gpr::kRbx) = kData + 64;
  state.reg(Gpr::kRax) = 5;
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  uint64_t v = 0;
  env.load(kData + 64, &v, 8);
  EXPECT_EQ(v, 5u);
  EXPECT_EQ(env.exclusive_requests, 0u);
}

TEST_F(InterpreterTest, MisalignedLockedOpWithinOneHostWordNeedsNoExclusiveSection) {
  load({0xf0, 0x66, 0x01, 0x03, 0xf4});  // lock add [rbx], ax; hlt
  const uint64_t at = kData + 64 + 5;    // bytes 5 and 6 of an aligned word
  const uint64_t neighbours = 0x1122334455667788;
  env.store(kData + 64, &neighbours, 8);
  state.reg(Gpr::kRbx) = at;
  state.reg(Gpr::kRax) = 0x0101;
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  uint64_t v = 0;
  env.load(kData + 64, &v, 8);
  EXPECT_EQ(v, 0x1123344455667788u);  // 0x3344 + 0x0101 at bytes 5..6, the rest untouched
  EXPECT_EQ(env.exclusive_requests, 0u);
}

TEST_F(InterpreterTest, LockedAddAcrossACacheLineRunsInAnExclusiveSection) {
  load(kLockAdd);
  const uint64_t at = kData + 64 - 4;
  const uint64_t start = 0x00000001ffffffff;
  env.store(at, &start, 8);
  state.reg(Gpr::kRbx) = at;
  state.reg(Gpr::kRax) = 1;
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  uint64_t v = 0;
  env.load(at, &v, 8);
  EXPECT_EQ(v, 0x0000000200000000u);  // the carry crossed the line
  EXPECT_EQ(env.exclusive_sections, 1u);
  EXPECT_EQ(env.exclusive_ends, 1u);
}

// FlatEnvironment stores pages in reverse order: an operand not split at the page boundary would
// read and write the wrong bytes.
TEST_F(InterpreterTest, LockedAddAcrossAPageRunsInAnExclusiveSection) {
  load(kLockAdd);
  const uint64_t at = kData + 4096 - 3;
  const uint64_t start = 0x0102030405ffffff;
  env.store(at, &start, 8);
  state.reg(Gpr::kRbx) = at;
  state.reg(Gpr::kRax) = 1;
  const RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kHalted) << e.message;
  uint64_t v = 0;
  env.load(at, &v, 8);
  EXPECT_EQ(v, 0x0102030406000000u);
  EXPECT_EQ(env.exclusive_sections, 1u);
  EXPECT_EQ(env.exclusive_ends, 1u);
}

TEST_F(InterpreterTest, XchgAndCmpxchgAcrossAPageSwapBothHalves) {
  // xchg [rbx], rax; lock cmpxchg [rbx], rcx (rax holds the old value: equal); hlt
  load({0x48, 0x87, 0x03, 0xf0, 0x48, 0x0f, 0xb1, 0x0b, 0xf4});
  const uint64_t at = kData + 2 * 4096 - 2;
  const uint64_t start = 0x1111111111111111;
  env.store(at, &start, 8);
  state.reg(Gpr::kRbx) = at;
  state.reg(Gpr::kRax) = 0x2222222222222222;
  state.reg(Gpr::kRcx) = 0x3333333333333333;
  const RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kHalted) << e.message;
  // xchg: rax = 0x1111...; memory = 0x2222... Then cmpxchg compares rax with 0x2222...: unequal,
  // so rax = 0x2222... and memory keeps its value.
  uint64_t v = 0;
  env.load(at, &v, 8);
  EXPECT_EQ(v, 0x2222222222222222u);
  EXPECT_EQ(state.reg(Gpr::kRax), 0x2222222222222222u);
  EXPECT_EQ(state.rflags & 0x40, 0u);  // ZF clear: unequal
  EXPECT_EQ(env.exclusive_sections, 2u);
}

TEST_F(InterpreterTest, RefusedExclusiveSectionStopsBeforeTheInstructionWithNothingChanged) {
  load({0x90, 0xf0, 0x48, 0x0f, 0xc1, 0x03, 0xf4});  // nop; lock xadd [rbx], rax; hlt
  const uint64_t at = kData + 4096 - 4;
  state.reg(Gpr::kRbx) = at;
  state.reg(Gpr::kRax) = 9;
  const uint64_t flags = state.rflags;
  env.refuse_exclusive = true;
  const RunExit e = run();
  EXPECT_EQ(e.reason, ExitReason::kStopped);
  EXPECT_EQ(e.instructions, 1u);
  EXPECT_EQ(state.rip, kCode + 1);
  EXPECT_EQ(state.reg(Gpr::kRax), 9u);
  EXPECT_EQ(state.rflags, flags);
  uint64_t v = 1;
  env.load(at, &v, 8);
  EXPECT_EQ(v, 0u);
  // Granted on the next run: the instruction runs then.
  env.refuse_exclusive = false;
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  env.load(at, &v, 8);
  EXPECT_EQ(v, 9u);
  EXPECT_EQ(state.reg(Gpr::kRax), 0u);
}

TEST_F(InterpreterTest, LockedWriteFaultAcrossAPageEndsTheSectionAndChangesNothing) {
  load(kLockAdd);
  const uint64_t at = kData + 4096 - 4;
  state.reg(Gpr::kRbx) = at;
  state.reg(Gpr::kRax) = 1;
  env.read_only_begin = kData + 4096;
  env.read_only_end = kData + 8192;
  EXPECT_EQ(run().reason, ExitReason::kMemoryFault);
  EXPECT_EQ(state.rip, kCode);
  EXPECT_EQ(env.exclusive_sections, 1u);
  EXPECT_EQ(env.exclusive_ends, 1u);
  uint64_t v = 1;
  env.load(at, &v, 8);
  EXPECT_EQ(v, 0u);
}

TEST_F(InterpreterTest, CpuidReportsTheFixedLeaves) {
  load({0x31, 0xc0, 0x0f, 0xa2, 0xf4});  // xor eax, eax; cpuid; hlt
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  char vendor[13] = {};
  const uint32_t regs[3] = {static_cast<uint32_t>(state.reg(Gpr::kRbx)),
                            static_cast<uint32_t>(state.reg(Gpr::kRdx)),
                            static_cast<uint32_t>(state.reg(Gpr::kRcx))};
  std::memcpy(vendor, regs, 12);
  EXPECT_STREQ(vendor, "VmforkSoftVM");
  EXPECT_EQ(state.reg(Gpr::kRax), 7u);
}

TEST_F(InterpreterTest, WriteFaultLeavesMemoryAndRegistersUnchanged) {
  load({0x48, 0x89, 0x03});  // mov [rbx], rax, across into a read-only page
  state.reg(Gpr::kRbx) = kData + 4096 - 4;
  env.read_only_begin = kData + 4096;
  env.read_only_end = kData + 8192;
  state.reg(Gpr::kRax) = ~uint64_t{0};
  EXPECT_EQ(run().reason, ExitReason::kMemoryFault);
  uint64_t v = 1;
  env.load(kData + 4096 - 4, &v, 8);
  EXPECT_EQ(v, 0u);
}

// Zydis calls a far return `ret`: it must not run as the near one (which pops only RIP).
TEST_F(InterpreterTest, FarReturnIsRefusedNotRunAsANearOne) {
  for (const std::vector<uint8_t>& code : {std::vector<uint8_t>{0xcb},                 // retf
                                           std::vector<uint8_t>{0x48, 0xcb},           // retfq
                                           std::vector<uint8_t>{0xca, 0x08, 0x00}}) {  // retf 8
    load(code);
    interpreter.flush_decoded();
    state.rip = kCode;
    const uint64_t rsp = state.reg(Gpr::kRsp);
    const RunExit e = run();
    EXPECT_EQ(e.reason, ExitReason::kUnsupported);
    EXPECT_EQ(e.message, "unsupported instruction ret (far) at RIP 0x100000");
    EXPECT_EQ(state.rip, kCode);
    EXPECT_EQ(state.reg(Gpr::kRsp), rsp);
  }
}

// An fs: or gs: prefix moves the source of movs (DS:RSI), never its destination (ES:RDI).
TEST_F(InterpreterTest, StringCopyReadsItsSourceThroughFsOrGs) {
  const char text[] = "abcdefghijklmnop";
  env.store(kData + 0x10, text, 16);
  load({0x64, 0xf3, 0xa4,          // fs rep movsb
        0x65, 0x48, 0xa5, 0xf4});  // gs movsq; hlt
  state.fs_base = kData;
  state.gs_base = kData;
  state.reg(Gpr::kRsi) = 0x10;
  state.reg(Gpr::kRdi) = kData + 0x800;
  state.reg(Gpr::kRcx) = 8;
  EXPECT_EQ(run().reason, ExitReason::kHalted);
  char copied[17] = {};
  env.load(kData + 0x800, copied, 16);
  EXPECT_STREQ(copied, text);
  EXPECT_EQ(state.reg(Gpr::kRsi), 0x20u);  // RSI counts without the base
  EXPECT_EQ(state.reg(Gpr::kRdi), kData + 0x810);
  EXPECT_EQ(state.reg(Gpr::kRcx), 0u);
}

// Not a test of speed: prints the interpreter's rate on a simple loop (never fails on timing).
TEST_F(InterpreterTest, ReportsMipsOnASimpleLoop) {
  // loop: add rax, rcx; xor rdx, rax; dec rcx; jnz loop; hlt
  load({0x48, 0x01, 0xc8, 0x48, 0x31, 0xc2, 0x48, 0xff, 0xc9, 0x75, 0xf5, 0xf4});
  state.reg(Gpr::kRcx) = 5'000'000;
  const auto start = std::chrono::steady_clock::now();
  const RunExit e = run(100'000'000);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(e.reason, ExitReason::kHalted);
  std::printf("soft interpreter: %.1f MIPS (%llu instructions)\n",
              static_cast<double>(e.instructions) / seconds / 1e6,
              static_cast<unsigned long long>(e.instructions));
}

}  // namespace
}  // namespace vmfork::soft::testing
