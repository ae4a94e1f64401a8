// The soft engine's x86-64 interpreter for one vCPU in 64-bit long mode.
//
// Supported subset (everything else ends the run with kUnsupported, state unchanged at its RIP):
//   mov movzx movsx movsxd lea xchg bswap(32/64) cmovcc setcc cbw/cwde/cdqe cwd/cdq/cqo
//   push pop leave add or adc sbb and sub xor cmp test inc dec neg not shl/sal shr sar rol ror
//   mul imul(1/2/3 operands) div idiv cmpxchg xadd bt bts btr btc bsf bsr tzcnt lzcnt popcnt
//   jcc jrcxz/jecxz jmp call ret [imm16] (near; far forms are refused)
//   movs/stos (b/w/d/q, rep, DF 0 or 1, 64-bit addresses)
//   clc stc cmc cld std lahf sahf in/out (imm8 and dx; 8/16/32) hlt cpuid rdtsc
//   nop (all forms) pause mfence lfence sfence endbr64 prefetch*
//   `lock` on add or adc sbb and sub xor inc dec neg not xchg cmpxchg xadd bts btr btc (memory
//   destinations), and xchg with memory (always locked), are atomic whatever their alignment:
//   within one aligned 8-byte word as one host compare-exchange; across words (a cache line, a
//   page) in an exclusive section (CpuEnvironment::begin_exclusive). cmpxchg8b/16b are not in the
//   subset. Operand sizes 8/16/32/64; all addressing modes; fs:/gs: add CpuState's base
//   (to the source of movs too).
// Status flags are exact where the SDM defines them. Undefined ones: logic ops, shifts and
// mul/imul clear AF; mul/imul set SF/ZF/PF from the low result; bsf/bsr/bt*/tzcnt/lzcnt leave the
// others unchanged; div/idiv leave all unchanged.
//
// Threading: one Interpreter per vCPU thread; run() is not reentrant.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/result.h"
#include "vmm/soft/cpu_environment.h"
#include "vmm/soft/cpu_state.h"
#include "vmm/soft/decode_cache.h"
#include "vmm/soft/decoder.h"
#include "vmm/soft/guest_access.h"

namespace vmfork::soft {

enum class ExitReason : uint8_t {
  kHalted,            // hlt retired (RIP after it)
  kStopped,           // check() or port_out asked to stop; at an instruction boundary
  kInstructionLimit,  // max_instructions retired
  kUnsupported,       // an instruction outside the subset (or undecodable); RIP at it
  kMemoryFault,       // translate() failed; RIP at the faulting instruction
  kDivideError,       // #DE (divide by zero or quotient overflow); RIP at the div
  kIoError,           // port_out/port_in failed; RIP at the in/out
};
const char* to_string(ExitReason reason);

// True for the exits that end the VM with an error.
constexpr bool is_error(ExitReason reason) {
  return reason >= ExitReason::kUnsupported;
}

struct RunExit {
  ExitReason reason = ExitReason::kStopped;
  uint64_t instructions = 0;               // retired by this run() (a long rep retires in chunks)
  std::string message;                     // error exits: the cause, with the instruction and RIP
  ErrorCode cause = ErrorCode::kInternal;  // kMemoryFault, kIoError: the environment's code
};

class Interpreter {
 public:
  Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Runs until an exit; `state` is always left at an instruction boundary.
  RunExit run(CpuState& state, CpuEnvironment& env, uint64_t max_instructions);

  // Drops every decoded instruction (e.g. after the monitor rewrote guest code).
  void flush_decoded() { cache_.clear(); }

#ifdef VMFORK_TESTING
  // Test builds only: called in every exclusive section between its read and its write. A delay
  // (e.g. a yield, so that another thread runs there), never a change of the protocol: a race
  // test uses it to make a missing exclusive section lose updates at once.
  void set_exclusive_window_delay(std::function<void()> delay) {
    exclusive_window_delay_ = std::move(delay);
  }
#endif

 private:
  // kRetry: the instruction did not run (an exclusive section was refused); stop with RIP at it.
  // kFault and kRetry come last: run() tests for both at once.
  enum class Step : uint8_t { kNext, kBranch, kHalt, kStop, kFault, kRetry };

  bool service();  // env.check() plus what must follow it; true: stop
  const DecodedInstruction* fetch();
  Step execute(const DecodedInstruction& d);

  // Operands.
  uint64_t effective_address(const Operand& o, const DecodedInstruction& d) const;
  uint64_t get_reg(const Operand& o, unsigned size) const;
  void set_reg(uint8_t reg, bool high8, unsigned size, uint64_t value);
  Result<uint64_t> read_operand(const Operand& o, const DecodedInstruction& d, unsigned size);
  Result<void> write_operand(const Operand& o, const DecodedInstruction& d, unsigned size,
                             uint64_t value);

  // Instruction groups.
  Step binary_alu(const DecodedInstruction& d);
  Step unary_alu(const DecodedInstruction& d);
  Step shift(const DecodedInstruction& d);
  Step multiply(const DecodedInstruction& d);
  Step divide(const DecodedInstruction& d);
  Step bit_test(const DecodedInstruction& d);
  Step bit_scan(const DecodedInstruction& d);
  Step exchange(const DecodedInstruction& d);
  Step compare_exchange(const DecodedInstruction& d);
  Step exchange_add(const DecodedInstruction& d);
  Step string_op(const DecodedInstruction& d);
  Step port_io(const DecodedInstruction& d);
  Step push(const DecodedInstruction& d);
  Step pop(const DecodedInstruction& d);
  Step cpuid();

  // Read-modify-write of operand 0 (register, memory, or locked memory): `update(old, flags)`
  // returns the new value and may set `flags` (bits of `flag_mask` merged into RFLAGS).
  template <class Update>
  Step modify(const DecodedInstruction& d, const Operand& dst, unsigned size, uint64_t flag_mask,
              Update&& update);

  // Locked read-modify-write of `size` bytes at `address`: `update(old)` returns the new value
  // (it may be called more than once; the last call's result is stored).
  // Out of line and cold: inlined, they grew the handlers enough that GCC stopped inlining
  // read_operand and set_reg into them (12% more host instructions on `vmfork bench cpu`).
  template <class Update>
  [[gnu::noinline, gnu::cold]] Step locked_update(uint64_t address, unsigned size, Update&& update);
  template <class Update>
  [[gnu::noinline, gnu::cold]] Step locked_exclusive(uint64_t address, unsigned size,
                                                     Update& update);

  // Exits with an error (the instruction does not retire).
  Step fault(ExitReason reason, std::string message, ErrorCode cause = ErrorCode::kInternal);
  Step memory_fault(const Error& error);
  Step unsupported(const DecodedInstruction& d, const char* detail);

  Decoder decoder_;
  DecodeCache cache_;
  GuestAccess access_{cache_};
  uint64_t flush_generation_ = 0;

  // Valid during run().
  CpuState* state_ = nullptr;
  CpuEnvironment* env_ = nullptr;
  uint64_t next_rip_ = 0;  // where the current instruction continues
  RunExit fault_;          // filled by fault()
#ifdef VMFORK_TESTING
  std::function<void()> exclusive_window_delay_;
#endif
};

}  // namespace vmfork::soft
