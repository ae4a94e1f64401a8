// libFuzzer target: the soft engine's interpreter from a random register state on random code,
// in a small guest RAM (the input's layout: interpreter_input.h).
//
// Every input runs twice, each time from a fresh interpreter and RAM:
//
//   A, as the soft vCPU runs: run() with the input's instruction budget, running on after every
//      stop the environment asks for, with check() stopping runs and flushing the decoded
//      instructions as the input says;
//   B, one instruction at a time: run(state, env, 1) with the decoded instructions dropped
//      before each step, so each one is decoded afresh from the bytes in RAM.
//
// Properties, beyond "no crash, no leak, no undefined behaviour, no hang" (ASan, UBSan,
// LeakSanitizer, the bounded budget and libFuzzer's -timeout):
//   - the interpreter touches no memory but guest RAM, only through pointers translate() gave
//     it, only until the next check(), and writes only through write translations
//     (guarded_environment.h);
//   - run() retires at most the instructions it was allowed, and an error exit says why;
//   - B: an instruction that faults does not retire: registers and memory are as before it
//     (a `rep` string instruction may have done some elements: RCX, RSI, RDI and the memory it
//     covered may change, RIP stays at it);
//   - A and B end in the same state (registers, RIP, flags, RAM, exit, retired count), so the
//     decoded-instruction cache and the translation cache change nothing a guest can see,
//     self-modifying code included. Skipped when the guest read the TSC.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/guarded_environment.h"
#include "tests/fuzz/interpreter_input.h"
#include "vmm/soft/decoder.h"
#include "vmm/soft/interpreter.h"

namespace vmfork::fuzz {
namespace {

using soft::CpuState;
using soft::ExitReason;
using soft::RunExit;

struct Outcome {
  CpuState state;
  ExitReason reason = ExitReason::kStopped;
  uint64_t retired = 0;
  bool read_tsc = false;                 // B only: an rdtsc ran, so A and B may differ
  std::array<std::byte, kRamBytes> ram;  // at the end
};

bool same_registers(const CpuState& a, const CpuState& b) {
  return a.gpr == b.gpr && a.rip == b.rip && a.rflags == b.rflags && a.fs_base == b.fs_base &&
         a.gs_base == b.gs_base;
}

void check_exit(const RunExit& exit, uint64_t allowed) {
  FUZZ_CHECK(exit.instructions <= allowed, "run() retired %llu of %llu allowed",
             static_cast<unsigned long long>(exit.instructions),
             static_cast<unsigned long long>(allowed));
  if (!soft::is_error(exit.reason)) return;
  FUZZ_CHECK(!exit.message.empty(), "%s without a message", soft::to_string(exit.reason));
  if (exit.reason == ExitReason::kMemoryFault) {
    FUZZ_CHECK(exit.cause == ErrorCode::kOutsideRam || exit.cause == ErrorCode::kOutOfFrames,
               "memory fault with cause %s: %s", to_string(exit.cause), exit.message.c_str());
  }
}

// A: run() as the soft vCPU calls it. `interpreter` is as good as new: its decoded
// instructions were dropped (its translations are dropped by every run()).
void run_whole(const InterpreterInput& in, GuardedEnvironment& env, soft::Interpreter& interpreter,
               Outcome& out) {
  env.reset(in.environment(), in.image);
  interpreter.flush_decoded();
  out.state = in.state();
  out.reason = ExitReason::kStopped;
  out.retired = 0;
  out.read_tsc = false;
  const uint64_t budget = in.budget();
  // check() stops at most every second call, so two runs retire at least one instruction.
  for (uint64_t runs = 0; out.retired < budget; ++runs) {
    FUZZ_CHECK(runs <= 2 * budget + 2, "no progress: %llu runs, %llu instructions retired",
               static_cast<unsigned long long>(runs), static_cast<unsigned long long>(out.retired));
    const RunExit exit = interpreter.run(out.state, env, budget - out.retired);
    check_exit(exit, budget - out.retired);
    out.retired += exit.instructions;
    out.reason = exit.reason;
    env.end_epoch();
    if (exit.reason != ExitReason::kStopped) break;  // stopped: the vCPU loop runs on
  }
  FUZZ_CHECK(out.reason != ExitReason::kInstructionLimit || out.retired == budget,
             "instruction limit after %llu of %llu", static_cast<unsigned long long>(out.retired),
             static_cast<unsigned long long>(budget));
  // The budget's last instruction may have been followed by a stop (a branch's check(), an
  // `out` to the exit port): the same end as the limit.
  if (out.reason == ExitReason::kStopped && out.retired == budget) {
    out.reason = ExitReason::kInstructionLimit;
  }
  env.copy_ram(out.ram);
}

bool decode_at(const GuardedEnvironment& env, uint64_t rip, soft::DecodedInstruction& insn) {
  static const soft::Decoder decoder;
  std::array<std::byte, soft::kMaxInstructionLength> bytes{};
  const size_t available = env.peek(rip, bytes);
  return available > 0 && decoder.decode(bytes.data(), available, insn) == soft::DecodeStatus::kOk;
}

// B: one instruction per run(), each decoded afresh.
void run_stepped(const InterpreterInput& in, GuardedEnvironment& env,
                 soft::Interpreter& interpreter, Outcome& out) {
  EnvironmentConfig config = in.environment();
  config.stop_every = 0;
  config.flush_every = 0;
  env.reset(config, in.image);
  out.state = in.state();
  out.reason = ExitReason::kStopped;
  out.retired = 0;
  out.read_tsc = false;
  const uint64_t budget = in.budget();
  while (out.retired < budget) {
    const CpuState before = out.state;
    soft::DecodedInstruction insn;
    const bool decoded = decode_at(env, before.rip, insn);
    out.read_tsc |= decoded && insn.op == soft::Op::kRdtsc;
    interpreter.flush_decoded();
    const RunExit exit = interpreter.run(out.state, env, 1);
    check_exit(exit, 1);
    out.reason = exit.reason;
    if (soft::is_error(exit.reason)) {
      FUZZ_CHECK(exit.instructions == 0, "a faulting instruction retired: %s",
                 exit.message.c_str());
      const bool rep_string =
          decoded && insn.rep && (insn.op == soft::Op::kMovs || insn.op == soft::Op::kStos);
      CpuState expected = before;
      if (rep_string) {
        for (const soft::Gpr r : {soft::Gpr::kRcx, soft::Gpr::kRsi, soft::Gpr::kRdi})
          expected.reg(r) = out.state.reg(r);
      }
      FUZZ_CHECK(same_registers(out.state, expected),
                 "registers changed by an instruction that did not retire (%s)",
                 exit.message.c_str());
      FUZZ_CHECK(rep_string || env.unchanged_in_epoch(),
                 "memory changed by an instruction that did not retire (%s)", exit.message.c_str());
      env.end_epoch();
      break;
    }
    FUZZ_CHECK(exit.instructions == 1, "a step retired %llu instructions (%s)",
               static_cast<unsigned long long>(exit.instructions), soft::to_string(exit.reason));
    ++out.retired;
    env.end_epoch();
    if (exit.reason == ExitReason::kHalted) break;
  }
  if (out.reason == ExitReason::kStopped && out.retired == budget) {
    out.reason = ExitReason::kInstructionLimit;  // as in run_whole
  }
  env.copy_ram(out.ram);
}

}  // namespace
}  // namespace vmfork::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmfork::fuzz;
  // Made once (never destroyed: libFuzzer may exit at any point): a fresh interpreter costs
  // more than most inputs, in the page faults of its decoded-instruction cache.
  static GuardedEnvironment* const env = new GuardedEnvironment;
  static vmfork::soft::Interpreter* const interpreter = new vmfork::soft::Interpreter;
  static Outcome* const whole_outcome = new Outcome;
  static Outcome* const stepped_outcome = new Outcome;
  const InterpreterInput in =
      InterpreterInput::parse({reinterpret_cast<const std::byte*>(data), size});
  run_whole(in, *env, *interpreter, *whole_outcome);
  run_stepped(in, *env, *interpreter, *stepped_outcome);
  const Outcome& whole = *whole_outcome;
  const Outcome& stepped = *stepped_outcome;
  if (stepped.read_tsc) return 0;
  FUZZ_CHECK(whole.retired == stepped.retired, "run() retired %llu, steps %llu",
             static_cast<unsigned long long>(whole.retired),
             static_cast<unsigned long long>(stepped.retired));
  FUZZ_CHECK(whole.reason == stepped.reason, "run() ended %s, steps %s",
             vmfork::soft::to_string(whole.reason), vmfork::soft::to_string(stepped.reason));
  FUZZ_CHECK(same_registers(whole.state, stepped.state),
             "run() and steps end in different registers (RIP %#llx and %#llx)",
             static_cast<unsigned long long>(whole.state.rip),
             static_cast<unsigned long long>(stepped.state.rip));
  // memcmp: a byte loop would be instrumented for libFuzzer, comparison by comparison.
  FUZZ_CHECK(std::memcmp(whole.ram.data(), stepped.ram.data(), whole.ram.size()) == 0,
             "run() and steps leave different RAM");
  return 0;
}
