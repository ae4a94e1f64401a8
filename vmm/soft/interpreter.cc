#include "vmm/soft/interpreter.h"

#include <atomic>

#include <x86intrin.h>

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

#include "vmm/hypervisor/guest_word.h"
#include "vmm/soft/cpuid_leaves.h"

namespace vmfork::soft {
namespace {

__extension__ using U128 = unsigned __int128;
__extension__ using I128 = __int128;

constexpr uint64_t kRepChunkBytes = uint64_t{1} << 20;  // a long rep retires per MiB

std::string hex(uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, value);
  return buf;
}

uint64_t gpr_of(const CpuState& s, Gpr r, unsigned size) {
  return s.reg(r) & width_mask(size * 8);
}

// Atomic compare-exchange of `size` bytes at `p` (x86 hosts allow unaligned locked accesses).
bool atomic_cas(std::byte* p, unsigned size, uint64_t& expected, uint64_t desired) {
  switch (size) {
    case 1: {
      auto e = static_cast<uint8_t>(expected);
      const bool ok = __atomic_compare_exchange_n(reinterpret_cast<uint8_t*>(p), &e,
                                                  static_cast<uint8_t>(desired), false,
                                                  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      expected = e;
      return ok;
    }
    case 2: {
      auto e = static_cast<uint16_t>(expected);
      const bool ok = __atomic_compare_exchange_n(reinterpret_cast<uint16_t*>(p), &e,
                                                  static_cast<uint16_t>(desired), false,
                                                  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      expected = e;
      return ok;
    }
    case 4: {
      auto e = static_cast<uint32_t>(expected);
      const bool ok = __atomic_compare_exchange_n(reinterpret_cast<uint32_t*>(p), &e,
                                                  static_cast<uint32_t>(desired), false,
                                                  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      expected = e;
      return ok;
    }
    default:
      return __atomic_compare_exchange_n(reinterpret_cast<uint64_t*>(p), &expected, desired, false,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  }
}

uint64_t atomic_load(const std::byte* p, unsigned size) {
  switch (size) {
    case 1:
      return __atomic_load_n(reinterpret_cast<const uint8_t*>(p), __ATOMIC_SEQ_CST);
    case 2:
      return __atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_SEQ_CST);
    case 4:
      return __atomic_load_n(reinterpret_cast<const uint32_t*>(p), __ATOMIC_SEQ_CST);
    default:
      return __atomic_load_n(reinterpret_cast<const uint64_t*>(p), __ATOMIC_SEQ_CST);
  }
}

uint64_t atomic_exchange(std::byte* p, unsigned size, uint64_t value) {
  switch (size) {
    case 1:
      return __atomic_exchange_n(reinterpret_cast<uint8_t*>(p), static_cast<uint8_t>(value),
                                 __ATOMIC_SEQ_CST);
    case 2:
      return __atomic_exchange_n(reinterpret_cast<uint16_t*>(p), static_cast<uint16_t>(value),
                                 __ATOMIC_SEQ_CST);
    case 4:
      return __atomic_exchange_n(reinterpret_cast<uint32_t*>(p), static_cast<uint32_t>(value),
                                 __ATOMIC_SEQ_CST);
    default:
      return __atomic_exchange_n(reinterpret_cast<uint64_t*>(p), value, __ATOMIC_SEQ_CST);
  }
}

}  // namespace

const char* to_string(ExitReason reason) {
  switch (reason) {
    case ExitReason::kHalted:
      return "halted";
    case ExitReason::kStopped:
      return "stopped";
    case ExitReason::kInstructionLimit:
      return "instruction limit";
    case ExitReason::kUnsupported:
      return "unsupported instruction";
    case ExitReason::kMemoryFault:
      return "memory fault";
    case ExitReason::kDivideError:
      return "divide error";
    case ExitReason::kIoError:
      return "port I/O error";
  }
  return "?";
}

Interpreter::Interpreter() = default;

// ---------------------------------------------------------------------------------------------
// The run loop

RunExit Interpreter::run(CpuState& state, CpuEnvironment& env, uint64_t max_instructions) {
  state_ = &state;
  env_ = &env;
  access_.set_environment(env);
  uint64_t retired = 0;
  auto exit = [&](ExitReason reason) {
    RunExit e;
    e.reason = reason;
    e.instructions = retired;
    return e;
  };
  if (service()) return exit(ExitReason::kStopped);
  for (;;) {
    if (retired >= max_instructions) return exit(ExitReason::kInstructionLimit);
    const DecodedInstruction* d = cache_.find(state.rip);
    if (d == nullptr) {
      d = fetch();
      if (d == nullptr) {
        fault_.instructions = retired;
        return std::move(fault_);
      }
    }
    next_rip_ = state.rip + d->length;
    const Step step = execute(*d);
    if (step >= Step::kFault) [[unlikely]] {  // one test on the hot path for both
      if (step == Step::kRetry) return exit(ExitReason::kStopped);  // RIP stays at the instruction
      fault_.instructions = retired;
      return std::move(fault_);
    }
    state.rip = next_rip_;
    ++retired;
    switch (step) {
      case Step::kNext:
        break;
      case Step::kBranch:
        if (service()) return exit(ExitReason::kStopped);
        break;
      case Step::kHalt:
        return exit(ExitReason::kHalted);
      case Step::kStop:
        return exit(ExitReason::kStopped);
      case Step::kFault:
      case Step::kRetry:
        break;
    }
  }
}

bool Interpreter::service() {
  const bool stop = env_->check();
  access_.invalidate();
  const uint64_t generation = env_->flush_generation();
  if (generation != flush_generation_) {
    flush_generation_ = generation;
    cache_.clear();
  }
  return stop;
}

const DecodedInstruction* Interpreter::fetch() {
  const uint64_t rip = state_->rip;
  std::byte bytes[kMaxInstructionLength];
  const uint64_t in_page = 0x1000 - (rip & 0xfff);
  size_t available = in_page < kMaxInstructionLength ? in_page : kMaxInstructionLength;
  Result<std::byte*> first = access_.page(rip, Access::kExecute);
  if (!first) {
    memory_fault(first.error());
    return nullptr;
  }
  std::memcpy(bytes, *first, available);
  DecodedInstruction insn;
  DecodeStatus status = decoder_.decode(bytes, available, insn);
  if (status == DecodeStatus::kNeedMore) {
    // The instruction continues on the next page.
    Result<std::byte*> second = access_.page(rip + in_page, Access::kExecute);
    if (!second) {
      memory_fault(second.error());
      return nullptr;
    }
    std::memcpy(bytes + available, *second, kMaxInstructionLength - available);
    available = kMaxInstructionLength;
    status = decoder_.decode(bytes, available, insn);
  }
  if (status != DecodeStatus::kOk) {
    std::string shown;
    for (size_t i = 0; i < 4 && i < available; ++i) {
      char b[4];
      std::snprintf(b, sizeof b, " %02x", static_cast<unsigned>(bytes[i]));
      shown += b;
    }
    fault(ExitReason::kUnsupported,
          "unsupported instruction (undecodable bytes" + shown + ") at RIP " + hex(rip));
    return nullptr;
  }
  return cache_.insert(rip, insn);
}

// ---------------------------------------------------------------------------------------------
// Errors

Interpreter::Step Interpreter::fault(ExitReason reason, std::string message, ErrorCode cause) {
  fault_ = RunExit{};
  fault_.reason = reason;
  fault_.message = std::move(message);
  fault_.cause = cause;
  return Step::kFault;
}

Interpreter::Step Interpreter::memory_fault(const Error& error) {
  const ExitReason reason = error.code == ErrorCode::kInvalidArgument ? ExitReason::kUnsupported
                                                                      : ExitReason::kMemoryFault;
  return fault(reason, "memory fault at RIP " + hex(state_->rip) + ": " + error.message,
               error.code);
}

Interpreter::Step Interpreter::unsupported(const DecodedInstruction& d, const char* detail) {
  std::string message = "unsupported instruction ";
  message += mnemonic_name(d.mnemonic);
  if (detail[0] != '\0') message += std::string(" (") + detail + ")";
  return fault(ExitReason::kUnsupported, message + " at RIP " + hex(state_->rip));
}

// ---------------------------------------------------------------------------------------------
// Operands

uint64_t Interpreter::effective_address(const Operand& o, const DecodedInstruction& d) const {
  uint64_t address = static_cast<uint64_t>(o.value);
  if (o.base == kRipBase) {
    address += next_rip_;
  } else if (o.base != kNoReg) {
    address += state_->gpr[o.base];
  }
  if (o.index != kNoReg) address += state_->gpr[o.index] * o.scale;
  if (d.address_size == 4) address &= 0xffffffff;
  if (o.segment == SegmentBase::kFs) address += state_->fs_base;
  if (o.segment == SegmentBase::kGs) address += state_->gs_base;
  return address;
}

uint64_t Interpreter::get_reg(const Operand& o, unsigned size) const {
  const uint64_t full = state_->gpr[o.reg];
  if (o.high8) return (full >> 8) & 0xff;
  return full & width_mask(size * 8);
}

// 32-bit results zero-extend into the full register; 8- and 16-bit results merge.
void Interpreter::set_reg(uint8_t reg, bool high8, unsigned size, uint64_t value) {
  uint64_t& full = state_->gpr[reg];
  if (high8) {
    full = (full & ~uint64_t{0xff00}) | ((value & 0xff) << 8);
  } else if (size >= 4) {
    full = value & width_mask(size * 8);
  } else {
    const uint64_t mask = width_mask(size * 8);
    full = (full & ~mask) | (value & mask);
  }
}

Result<uint64_t> Interpreter::read_operand(const Operand& o, const DecodedInstruction& d,
                                           unsigned size) {
  switch (o.kind) {
    case OperandKind::kReg:
      return get_reg(o, size);
    case OperandKind::kImm:
      return static_cast<uint64_t>(o.value) & width_mask(size * 8);
    case OperandKind::kMem:
      return access_.read(effective_address(o, d), size);
    case OperandKind::kNone:
      break;
  }
  return make_error(ErrorCode::kInternal, "operand missing");
}

Result<void> Interpreter::write_operand(const Operand& o, const DecodedInstruction& d,
                                        unsigned size, uint64_t value) {
  if (o.kind == OperandKind::kReg) {
    set_reg(o.reg, o.high8, size, value);
    return Ok{};
  }
  return access_.write(effective_address(o, d), size, value & width_mask(size * 8));
}

template <class Update>
Interpreter::Step Interpreter::modify(const DecodedInstruction& d, const Operand& dst,
                                      unsigned size, uint64_t flag_mask, Update&& update) {
  uint64_t flags = 0;
  if (dst.kind == OperandKind::kReg) {
    const uint64_t result = update(get_reg(dst, size), flags);
    set_reg(dst.reg, dst.high8, size, result);
  } else if (d.lock) {
    const Step step = locked_update(effective_address(dst, d), size, [&](uint64_t old) {
      flags = 0;
      return update(old, flags);
    });
    if (step != Step::kNext) return step;
  } else {
    const uint64_t address = effective_address(dst, d);
    Result<uint64_t> old = access_.read(address, size);
    if (!old) return memory_fault(old.error());
    const uint64_t result = update(*old, flags);
    Result<void> written = access_.write(address, size, result & width_mask(size * 8));
    if (!written) return memory_fault(written.error());
  }
  state_->rflags = merge_flags(state_->rflags, flags, flag_mask);
  return Step::kNext;
}

// A locked operand within one aligned 8-byte word is one host compare-exchange: of the operand
// itself when it is naturally aligned (the fast path), else of the aligned word that holds it.
// Guest pages are host pages, so host alignment is guest alignment. Anything wider than the word
// it starts in crosses a cache line or a page, where a host locked instruction would be a split
// lock (slow, and refused by hosts that detect split locks) or no single instruction at all.
template <class Update>
Interpreter::Step Interpreter::locked_update(uint64_t address, unsigned size, Update&& update) {
  const uint64_t mask = width_mask(size * 8);
  const uint64_t in_word = address & 7;
  if (in_word + size > 8) return locked_exclusive(address, size, update);
  Result<std::byte*> p = access_.page(address, Access::kWrite);
  if (!p) return memory_fault(p.error());
  if ((address & (size - 1)) == 0) {
    uint64_t old = atomic_load(*p, size);
    while (!atomic_cas(*p, size, old, update(old) & mask)) {
      // `old` was reloaded
    }
  } else {
    std::byte* word = *p - in_word;
    const unsigned shift = static_cast<unsigned>(in_word * 8);
    uint64_t old_word = atomic_load(word, 8);
    for (;;) {
      const uint64_t result = update((old_word >> shift) & mask) & mask;
      const uint64_t new_word = (old_word & ~(mask << shift)) | (result << shift);
      if (atomic_cas(word, 8, old_word, new_word)) break;
    }
  }
  access_.note_write(address, size);
  return Step::kNext;
}

// The exclusive section: every other vCPU of the VM is stopped at an instruction boundary, so none
// reads or writes guest memory between our read and our write; then a plain read and write of
// the pieces is atomic. Why the host pointers stay right for the whole section:
// - exclusive_operand() breaks the COW sharing of both pages through the normal fault protocol
//   (each may be a different frame, shared with a snapshot and its clones), so both leaves are
//   writable when it returns. A writable leaf changes frame only through a COW fault of this VM
//   (which never happens to a writable leaf) or a fork (which needs the pause we hold). Nobody
//   else in the VM runs, so nobody else can change our leaves; a leaf holds a reference on its
//   frame, so neither frame is freed.
// - Other VMs (clones, snapshots) may share frames with us, but a shared frame is never written
//   (they copy it first), and after the COW break ours are no longer shared. So no other
//   address space can see or change the bytes we write.
template <class Update>
Interpreter::Step Interpreter::locked_exclusive(uint64_t address, unsigned size, Update& update) {
  if (env_->begin_exclusive() == Exclusive::kRetry) return Step::kRetry;
  Result<OperandBytes> bytes = access_.exclusive_operand(address, size);
  if (!bytes) {
    env_->end_exclusive();
    return memory_fault(bytes.error());
  }
  const uint64_t old = bytes->load();
#ifdef VMFORK_TESTING
  if (exclusive_window_delay_) exclusive_window_delay_();
#endif
  bytes->store(update(old) & width_mask(size * 8));
  env_->end_exclusive();
  access_.note_write(address, size);
  return Step::kNext;
}

// ---------------------------------------------------------------------------------------------
// Dispatch

Interpreter::Step Interpreter::execute(const DecodedInstruction& d) {
  CpuState& s = *state_;
  const unsigned size = d.operand_size;
  const Operand& op0 = d.operands[0];
  const Operand& op1 = d.operands[1];
  switch (d.op) {
    case Op::kUnsupported:
      return unsupported(d, d.far_branch ? "far" : "");

    case Op::kMov: {
      Result<uint64_t> v = read_operand(op1, d, op0.size);  // imm32 sign-extends to 64
      if (!v) return memory_fault(v.error());
      Result<void> w = write_operand(op0, d, op0.size, *v);
      if (!w) return memory_fault(w.error());
      return Step::kNext;
    }
    case Op::kMovzx:
    case Op::kMovsx: {
      Result<uint64_t> v = read_operand(op1, d, op1.size);
      if (!v) return memory_fault(v.error());
      const uint64_t value = d.op == Op::kMovsx ? sign_extend(*v, op1.size * 8u) : *v;
      set_reg(op0.reg, false, op0.size, value);
      return Step::kNext;
    }
    case Op::kLea: {
      Operand address = op1;
      address.segment = SegmentBase::kNone;  // lea computes the offset only
      set_reg(op0.reg, false, op0.size, effective_address(address, d));
      return Step::kNext;
    }
    case Op::kXchg:
      return exchange(d);
    case Op::kBswap: {
      if (size == 2) return unsupported(d, "16-bit operand");
      const uint64_t v = get_reg(op0, size);
      set_reg(op0.reg, false, size,
              size == 8 ? __builtin_bswap64(v) : __builtin_bswap32(static_cast<uint32_t>(v)));
      return Step::kNext;
    }
    case Op::kCmovcc: {
      Result<uint64_t> v = read_operand(op1, d, size);  // read even when the condition fails
      if (!v) return memory_fault(v.error());
      // A false condition still writes a 32-bit destination (zero-extending it).
      set_reg(op0.reg, false, size, condition_holds(d.cc, s.rflags) ? *v : get_reg(op0, size));
      return Step::kNext;
    }
    case Op::kSetcc: {
      Result<void> w = write_operand(op0, d, 1, condition_holds(d.cc, s.rflags) ? 1 : 0);
      if (!w) return memory_fault(w.error());
      return Step::kNext;
    }
    case Op::kCbw: {
      const unsigned half = size * 4;  // bits of the source half
      set_reg(0, false, size, sign_extend(s.gpr[0], half));
      return Step::kNext;
    }
    case Op::kCwd: {
      const bool negative = msb(s.gpr[0], size * 8u);
      set_reg(2, false, size, negative ? ~uint64_t{0} : 0);
      return Step::kNext;
    }
    case Op::kPush:
      return push(d);
    case Op::kPop:
      return pop(d);
    case Op::kLeave: {
      Result<uint64_t> rbp = access_.read(s.reg(Gpr::kRbp), size);
      if (!rbp) return memory_fault(rbp.error());
      s.reg(Gpr::kRsp) = s.reg(Gpr::kRbp) + size;
      set_reg(static_cast<uint8_t>(Gpr::kRbp), false, size, *rbp);
      return Step::kNext;
    }

    case Op::kAdd:
    case Op::kOr:
    case Op::kAdc:
    case Op::kSbb:
    case Op::kAnd:
    case Op::kSub:
    case Op::kXor:
    case Op::kCmp:
    case Op::kTest:
      return binary_alu(d);
    case Op::kInc:
    case Op::kDec:
    case Op::kNeg:
    case Op::kNot:
      return unary_alu(d);
    case Op::kShl:
    case Op::kShr:
    case Op::kSar:
    case Op::kRol:
    case Op::kRor:
      return shift(d);
    case Op::kMul:
    case Op::kImul:
      return multiply(d);
    case Op::kDiv:
    case Op::kIdiv:
      return divide(d);
    case Op::kCmpxchg:
      return compare_exchange(d);
    case Op::kXadd:
      return exchange_add(d);
    case Op::kBt:
    case Op::kBts:
    case Op::kBtr:
    case Op::kBtc:
      return bit_test(d);
    case Op::kBsf:
    case Op::kBsr:
    case Op::kTzcnt:
    case Op::kLzcnt:
    case Op::kPopcnt:
      return bit_scan(d);

    case Op::kJcc:
      if (!condition_holds(d.cc, s.rflags)) return Step::kNext;
      next_rip_ += static_cast<uint64_t>(op0.value);
      return Step::kBranch;
    case Op::kJrcxz: {
      if (gpr_of(s, Gpr::kRcx, d.address_size) != 0) return Step::kNext;
      next_rip_ += static_cast<uint64_t>(op0.value);
      return Step::kBranch;
    }
    case Op::kJmp:
    case Op::kCall: {
      uint64_t target = 0;
      if (op0.kind == OperandKind::kImm) {
        target = next_rip_ + static_cast<uint64_t>(op0.value);
      } else {
        if (op0.size != 8) return unsupported(d, "operand size");
        Result<uint64_t> t = read_operand(op0, d, 8);
        if (!t) return memory_fault(t.error());
        target = *t;
      }
      if (d.op == Op::kCall) {
        const uint64_t rsp = s.reg(Gpr::kRsp) - 8;
        Result<void> w = access_.write(rsp, 8, next_rip_);
        if (!w) return memory_fault(w.error());
        s.reg(Gpr::kRsp) = rsp;
      }
      next_rip_ = target;
      return Step::kBranch;
    }
    case Op::kRet: {
      Result<uint64_t> target = access_.read(s.reg(Gpr::kRsp), 8);
      if (!target) return memory_fault(target.error());
      const uint64_t pop_extra = d.operand_count > 0 ? static_cast<uint64_t>(op0.value) : 0;
      s.reg(Gpr::kRsp) += 8 + pop_extra;
      next_rip_ = *target;
      return Step::kBranch;
    }

    case Op::kMovs:
    case Op::kStos:
      return string_op(d);

    case Op::kClc:
      s.rflags &= ~rflags::kCf;
      return Step::kNext;
    case Op::kStc:
      s.rflags |= rflags::kCf;
      return Step::kNext;
    case Op::kCmc:
      s.rflags ^= rflags::kCf;
      return Step::kNext;
    case Op::kCld:
      s.rflags &= ~rflags::kDf;
      return Step::kNext;
    case Op::kStd:
      s.rflags |= rflags::kDf;
      return Step::kNext;
    case Op::kLahf:
      set_reg(0, true, 1, (s.rflags & (rflags::kArithmetic & ~rflags::kOf)) | rflags::kFixed1);
      return Step::kNext;
    case Op::kSahf:
      s.rflags = merge_flags(s.rflags, (s.gpr[0] >> 8), rflags::kArithmetic & ~rflags::kOf);
      return Step::kNext;

    case Op::kNop:
      return Step::kNext;
    case Op::kFence:
      // Orders this vCPU's plain stores before its later loads, as seen by other vCPU threads.
#if defined(__SANITIZE_THREAD__)
    {
      // GCC's TSan refuses fences; a locked RMW is as strong on x86.
      thread_local std::atomic<uint64_t> fence_word{0};
      fence_word.fetch_add(0, std::memory_order_seq_cst);
    }
#else
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
      return Step::kNext;
    case Op::kHlt:
      return Step::kHalt;
    case Op::kIn:
    case Op::kOut:
      return port_io(d);
    case Op::kCpuid:
      return cpuid();
    case Op::kRdtsc: {
      const uint64_t tsc = __rdtsc();
      s.reg(Gpr::kRax) = tsc & 0xffffffff;
      s.reg(Gpr::kRdx) = tsc >> 32;
      return Step::kNext;
    }
  }
  return unsupported(d, "");
}

// ---------------------------------------------------------------------------------------------
// Arithmetic and logic

Interpreter::Step Interpreter::binary_alu(const DecodedInstruction& d) {
  const unsigned size = d.operands[0].size;
  const unsigned bits = size * 8;
  Result<uint64_t> src_r = read_operand(d.operands[1], d, size);
  if (!src_r) return memory_fault(src_r.error());
  const uint64_t b = *src_r;
  const uint64_t carry = state_->rflags & rflags::kCf;
  const Op op = d.op;
  auto compute = [op, b, carry, bits](uint64_t a, uint64_t& flags) {
    uint64_t r = 0;
    switch (op) {
      case Op::kAdd:
        r = a + b;
        flags = flags_add(a, b, r, bits);
        break;
      case Op::kAdc:
        r = a + b + carry;
        flags = flags_add(a, b, r, bits);
        break;
      case Op::kSub:
      case Op::kCmp:
        r = a - b;
        flags = flags_sub(a, b, r, bits);
        break;
      case Op::kSbb:
        r = a - b - carry;
        flags = flags_sub(a, b, r, bits);
        break;
      case Op::kAnd:
      case Op::kTest:
        r = a & b;
        flags = flags_logic(r, bits);
        break;
      case Op::kOr:
        r = a | b;
        flags = flags_logic(r, bits);
        break;
      default:
        r = a ^ b;
        flags = flags_logic(r, bits);
        break;
    }
    return r & width_mask(bits);
  };
  if (op == Op::kCmp || op == Op::kTest) {
    Result<uint64_t> a = read_operand(d.operands[0], d, size);
    if (!a) return memory_fault(a.error());
    uint64_t flags = 0;
    compute(*a, flags);
    state_->rflags = merge_flags(state_->rflags, flags, rflags::kArithmetic);
    return Step::kNext;
  }
  return modify(d, d.operands[0], size, rflags::kArithmetic, compute);
}

Interpreter::Step Interpreter::unary_alu(const DecodedInstruction& d) {
  const unsigned size = d.operands[0].size;
  const unsigned bits = size * 8;
  switch (d.op) {
    case Op::kInc:
      return modify(d, d.operands[0], size, rflags::kArithmetic & ~rflags::kCf,
                    [bits](uint64_t a, uint64_t& flags) {
                      const uint64_t r = a + 1;
                      flags = flags_add(a, 1, r, bits);
                      return r;
                    });
    case Op::kDec:
      return modify(d, d.operands[0], size, rflags::kArithmetic & ~rflags::kCf,
                    [bits](uint64_t a, uint64_t& flags) {
                      const uint64_t r = a - 1;
                      flags = flags_sub(a, 1, r, bits);
                      return r;
                    });
    case Op::kNeg:
      return modify(d, d.operands[0], size, rflags::kArithmetic,
                    [bits](uint64_t a, uint64_t& flags) {
                      const uint64_t r = 0 - a;
                      flags = flags_sub(0, a, r, bits);
                      return r;
                    });
    default:
      return modify(d, d.operands[0], size, 0, [](uint64_t a, uint64_t&) { return ~a; });
  }
}

Interpreter::Step Interpreter::shift(const DecodedInstruction& d) {
  const Operand& dst = d.operands[0];
  const unsigned size = dst.size;
  const unsigned bits = size * 8;
  uint64_t count = 1;
  if (d.operand_count > 1) count = read_operand(d.operands[1], d, 1).value();  // imm8 or cl
  count &= bits == 64 ? 63 : 31;
  if (count == 0) {
    // No flags change; a 32-bit register destination is still written (zero-extended).
    return modify(d, dst, size, 0, [](uint64_t a, uint64_t&) { return a; });
  }
  const Op op = d.op;
  const auto c = static_cast<unsigned>(count);
  const uint64_t mask = width_mask(bits);
  if (op == Op::kRol || op == Op::kRor) {
    return modify(
        d, dst, size, rflags::kCf | rflags::kOf, [op, c, bits, mask](uint64_t a, uint64_t& flags) {
          a &= mask;
          const unsigned r = c % bits;
          uint64_t v = a;
          if (r != 0) {
            v = op == Op::kRol ? (a << r) | (a >> (bits - r)) : (a >> r) | (a << (bits - r));
            v &= mask;
          }
          bool cf = false;
          bool of = false;
          if (op == Op::kRol) {
            cf = (v & 1) != 0;
            of = msb(v, bits) != cf;
          } else {
            cf = msb(v, bits);
            of = cf != msb(v << 1, bits);
          }
          flags = (cf ? rflags::kCf : 0) | (of ? rflags::kOf : 0);
          return v;
        });
  }
  return modify(d, dst, size, rflags::kArithmetic,
                [op, c, bits, mask](uint64_t a, uint64_t& flags) {
                  a &= mask;
                  uint64_t v = 0;
                  bool cf = false;
                  bool of = false;
                  switch (op) {
                    case Op::kShl:
                      v = (a << c) & mask;
                      cf = c <= bits && ((a >> (bits - c)) & 1) != 0;
                      of = msb(v, bits) != cf;
                      break;
                    case Op::kShr:
                      v = a >> c;
                      cf = ((a >> (c - 1)) & 1) != 0;
                      of = msb(a, bits);
                      break;
                    default: {  // sar
                      const auto sa = static_cast<int64_t>(sign_extend(a, bits));
                      v = static_cast<uint64_t>(sa >> c) & mask;
                      cf = ((sa >> (c - 1)) & 1) != 0;
                      break;
                    }
                  }
                  flags = flags_zsp(v, bits) | (cf ? rflags::kCf : 0) | (of ? rflags::kOf : 0);
                  return v;
                });
}

Interpreter::Step Interpreter::multiply(const DecodedInstruction& d) {
  CpuState& s = *state_;
  const unsigned size = d.operands[0].size;
  const unsigned bits = size * 8;
  const uint64_t mask = width_mask(bits);
  const bool is_signed = d.op == Op::kImul;
  auto set_flags = [&](bool overflow, uint64_t low) {
    const uint64_t f = (overflow ? rflags::kCf | rflags::kOf : 0) | flags_zsp(low, bits);
    s.rflags = merge_flags(s.rflags, f, rflags::kArithmetic);
  };
  if (d.operand_count >= 2) {  // imul r, r/m [, imm]: truncated product
    const Operand& factor = d.operands[d.operand_count == 3 ? 1 : 0];
    Result<uint64_t> a = read_operand(factor, d, size);
    if (!a) return memory_fault(a.error());
    Result<uint64_t> b = read_operand(d.operands[d.operand_count - 1], d, size);
    if (!b) return memory_fault(b.error());
    const I128 product = static_cast<I128>(static_cast<int64_t>(sign_extend(*a, bits))) *
                         static_cast<int64_t>(sign_extend(*b, bits));
    const uint64_t low = static_cast<uint64_t>(product) & mask;
    set_reg(d.operands[0].reg, false, size, low);
    set_flags(static_cast<I128>(static_cast<int64_t>(sign_extend(low, bits))) != product, low);
    return Step::kNext;
  }
  Result<uint64_t> src = read_operand(d.operands[0], d, size);
  if (!src) return memory_fault(src.error());
  const uint64_t acc = s.gpr[0] & mask;
  uint64_t low = 0;
  uint64_t high = 0;
  bool overflow = false;
  if (is_signed) {
    const I128 product = static_cast<I128>(static_cast<int64_t>(sign_extend(acc, bits))) *
                         static_cast<int64_t>(sign_extend(*src, bits));
    low = static_cast<uint64_t>(product) & mask;
    high = bits == 64 ? static_cast<uint64_t>(static_cast<U128>(product) >> 64)
                      : (static_cast<uint64_t>(product) >> bits) & mask;
    overflow = static_cast<I128>(static_cast<int64_t>(sign_extend(low, bits))) != product;
  } else {
    const U128 product = static_cast<U128>(acc) * *src;
    low = static_cast<uint64_t>(product) & mask;
    high = bits == 64 ? static_cast<uint64_t>(product >> 64)
                      : (static_cast<uint64_t>(product) >> bits) & mask;
    overflow = high != 0;
  }
  if (size == 1) {
    set_reg(0, false, 2, (high << 8) | low);  // ax = ah:al
  } else {
    set_reg(0, false, size, low);
    set_reg(2, false, size, high);
  }
  set_flags(overflow, low);
  return Step::kNext;
}

Interpreter::Step Interpreter::divide(const DecodedInstruction& d) {
  CpuState& s = *state_;
  const unsigned size = d.operands[0].size;
  const unsigned bits = size * 8;
  const uint64_t mask = width_mask(bits);
  Result<uint64_t> src = read_operand(d.operands[0], d, size);
  if (!src) return memory_fault(src.error());
  const char* name = mnemonic_name(d.mnemonic);
  if (*src == 0) {
    return fault(ExitReason::kDivideError,
                 std::string("divide error (#DE): ") + name + " by zero at RIP " + hex(s.rip));
  }
  // The dividend is twice the operand size: ax, dx:ax, edx:eax or rdx:rax.
  const U128 dividend = size == 1
                            ? (s.gpr[0] & 0xffff)
                            : (static_cast<U128>(s.gpr[2] & mask) << bits) | (s.gpr[0] & mask);
  uint64_t quotient = 0;
  uint64_t remainder = 0;
  bool overflow = false;
  if (d.op == Op::kDiv) {
    const U128 q = dividend / *src;
    overflow = (q >> bits) != 0;
    quotient = static_cast<uint64_t>(q);
    remainder = static_cast<uint64_t>(dividend % *src);
  } else {
    // Sign-extend the 2*bits dividend to 128 bits.
    const unsigned shift = 128 - 2 * bits;
    const I128 n = static_cast<I128>(dividend << shift) >> shift;
    const auto divisor = static_cast<int64_t>(sign_extend(*src, bits));
    const I128 min128 = static_cast<I128>(static_cast<U128>(1) << 127);
    if (divisor == -1 && n == min128) {
      overflow = true;
    } else {
      const I128 q = n / divisor;
      const I128 limit = static_cast<I128>(1) << (bits - 1);
      overflow = q >= limit || q < -limit;
      quotient = static_cast<uint64_t>(q);
      remainder = static_cast<uint64_t>(n % divisor);
    }
  }
  if (overflow) {
    return fault(ExitReason::kDivideError, std::string("divide error (#DE): ") + name +
                                               " quotient overflow at RIP " + hex(s.rip));
  }
  if (size == 1) {
    set_reg(0, false, 2, ((remainder & 0xff) << 8) | (quotient & 0xff));
  } else {
    set_reg(0, false, size, quotient);
    set_reg(2, false, size, remainder);
  }
  return Step::kNext;
}

Interpreter::Step Interpreter::bit_test(const DecodedInstruction& d) {
  Operand base = d.operands[0];
  const unsigned size = base.size;
  const unsigned bits = size * 8;
  Result<uint64_t> offset_r = read_operand(d.operands[1], d, size);
  if (!offset_r) return memory_fault(offset_r.error());
  const uint64_t offset = *offset_r;
  const unsigned bit = static_cast<unsigned>(offset & (bits - 1));
  if (base.kind == OperandKind::kMem && d.operands[1].kind == OperandKind::kReg) {
    // A register bit offset is signed and may address beyond the operand: move the operand.
    const auto signed_offset = static_cast<int64_t>(sign_extend(offset, bits));
    const int64_t units = signed_offset >> std::countr_zero(bits);
    base.value += units * static_cast<int64_t>(size);
  }
  const uint64_t bit_mask = uint64_t{1} << bit;
  if (d.op == Op::kBt) {
    Result<uint64_t> v = read_operand(base, d, size);
    if (!v) return memory_fault(v.error());
    state_->rflags =
        merge_flags(state_->rflags, (*v & bit_mask) != 0 ? rflags::kCf : 0, rflags::kCf);
    return Step::kNext;
  }
  const Op op = d.op;
  return modify(d, base, size, rflags::kCf, [op, bit_mask](uint64_t v, uint64_t& flags) {
    flags = (v & bit_mask) != 0 ? rflags::kCf : 0;
    if (op == Op::kBts) return v | bit_mask;
    if (op == Op::kBtr) return v & ~bit_mask;
    return v ^ bit_mask;
  });
}

Interpreter::Step Interpreter::bit_scan(const DecodedInstruction& d) {
  CpuState& s = *state_;
  const unsigned size = d.operands[0].size;
  const unsigned bits = size * 8;
  Result<uint64_t> src_r = read_operand(d.operands[1], d, size);
  if (!src_r) return memory_fault(src_r.error());
  const uint64_t src = *src_r;
  const uint8_t dst = d.operands[0].reg;
  switch (d.op) {
    case Op::kBsf:
    case Op::kBsr:
      if (src == 0) {  // destination unchanged (as AMD documents and Intel does)
        s.rflags |= rflags::kZf;
        return Step::kNext;
      }
      s.rflags &= ~rflags::kZf;
      set_reg(dst, false, size,
              d.op == Op::kBsf ? static_cast<uint64_t>(std::countr_zero(src))
                               : static_cast<uint64_t>(63 - std::countl_zero(src)));
      return Step::kNext;
    case Op::kTzcnt:
    case Op::kLzcnt: {
      const uint64_t r = src == 0 ? bits
                         : d.op == Op::kTzcnt
                             ? static_cast<uint64_t>(std::countr_zero(src))
                             : static_cast<uint64_t>(std::countl_zero(src)) - (64 - bits);
      set_reg(dst, false, size, r);
      const uint64_t f = (src == 0 ? rflags::kCf : 0) | (r == 0 ? rflags::kZf : 0);
      s.rflags = merge_flags(s.rflags, f, rflags::kCf | rflags::kZf);
      return Step::kNext;
    }
    default: {  // popcnt
      set_reg(dst, false, size, static_cast<uint64_t>(std::popcount(src)));
      s.rflags = merge_flags(s.rflags, src == 0 ? rflags::kZf : 0, rflags::kArithmetic);
      return Step::kNext;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Exchanges (atomic with memory)

Interpreter::Step Interpreter::exchange(const DecodedInstruction& d) {
  const Operand* mem = &d.operands[0];
  const Operand* reg = &d.operands[1];
  if (mem->kind != OperandKind::kMem) std::swap(mem, reg);
  const unsigned size = reg->size;
  if (mem->kind == OperandKind::kReg) {
    const uint64_t a = get_reg(d.operands[0], size);
    const uint64_t b = get_reg(d.operands[1], size);
    set_reg(d.operands[0].reg, d.operands[0].high8, size, b);
    set_reg(d.operands[1].reg, d.operands[1].high8, size, a);
    return Step::kNext;
  }
  const uint64_t address = effective_address(*mem, d);
  const uint64_t value = get_reg(*reg, size);
  uint64_t old = 0;
  if ((address & (size - 1)) == 0) {
    Result<std::byte*> p = access_.page(address, Access::kWrite);
    if (!p) return memory_fault(p.error());
    old = atomic_exchange(*p, size, value);
    access_.note_write(address, size);
  } else {
    const Step step = locked_update(address, size, [&old, value](uint64_t current) {
      old = current;
      return value;
    });
    if (step != Step::kNext) return step;
  }
  set_reg(reg->reg, reg->high8, size, old);
  return Step::kNext;
}

Interpreter::Step Interpreter::compare_exchange(const DecodedInstruction& d) {
  CpuState& s = *state_;
  const Operand& dst = d.operands[0];
  const unsigned size = dst.size;
  const unsigned bits = size * 8;
  const uint64_t expected = s.gpr[0] & width_mask(bits);
  const uint64_t desired = get_reg(d.operands[1], size);
  uint64_t old = 0;
  if (dst.kind == OperandKind::kReg) {
    old = get_reg(dst, size);
    if (old == expected) set_reg(dst.reg, dst.high8, size, desired);
  } else if (d.lock) {
    const uint64_t address = effective_address(dst, d);
    if ((address & (size - 1)) == 0) {
      Result<std::byte*> p = access_.page(address, Access::kWrite);
      if (!p) return memory_fault(p.error());
      old = expected;
      if (atomic_cas(*p, size, old, desired)) access_.note_write(address, size);
    } else {
      // Unequal, the processor writes back what it read; so does this.
      const Step step = locked_update(address, size, [&old, expected, desired](uint64_t current) {
        old = current;
        return current == expected ? desired : current;
      });
      if (step != Step::kNext) return step;
    }
  } else {
    const uint64_t address = effective_address(dst, d);
    Result<uint64_t> current = access_.read(address, size);
    if (!current) return memory_fault(current.error());
    old = *current;
    // The processor writes the destination either way (its old value when unequal).
    Result<void> w = access_.write(address, size, old == expected ? desired : old);
    if (!w) return memory_fault(w.error());
  }
  s.rflags =
      merge_flags(s.rflags, flags_sub(expected, old, expected - old, bits), rflags::kArithmetic);
  if (old != expected) set_reg(0, false, size, old);
  return Step::kNext;
}

Interpreter::Step Interpreter::exchange_add(const DecodedInstruction& d) {
  const Operand& dst = d.operands[0];
  const Operand& src = d.operands[1];
  const unsigned size = dst.size;
  const unsigned bits = size * 8;
  const uint64_t addend = get_reg(src, size);
  uint64_t old = 0;
  const Step step =
      modify(d, dst, size, rflags::kArithmetic, [&old, addend, bits](uint64_t a, uint64_t& flags) {
        old = a;
        const uint64_t r = a + addend;
        flags = flags_add(a, addend, r, bits);
        return r;
      });
  if (step != Step::kNext) return step;
  if (dst.kind == OperandKind::kReg) {
    // Register form: the source gets the old value, then the destination the sum.
    const uint64_t sum = get_reg(dst, size);
    set_reg(src.reg, src.high8, size, old);
    set_reg(dst.reg, dst.high8, size, sum);
  } else {
    set_reg(src.reg, src.high8, size, old);
  }
  return Step::kNext;
}

// ---------------------------------------------------------------------------------------------
// Stack

Interpreter::Step Interpreter::push(const DecodedInstruction& d) {
  CpuState& s = *state_;
  const unsigned size = d.operand_size;  // 8, or 2 with an operand-size prefix
  Result<uint64_t> v = read_operand(d.operands[0], d, d.operands[0].size);
  if (!v) return memory_fault(v.error());
  uint64_t value = *v;
  if (d.operands[0].kind == OperandKind::kImm) value = static_cast<uint64_t>(d.operands[0].value);
  const uint64_t rsp = s.reg(Gpr::kRsp) - size;
  Result<void> w = access_.write(rsp, size, value & width_mask(size * 8));
  if (!w) return memory_fault(w.error());
  s.reg(Gpr::kRsp) = rsp;
  return Step::kNext;
}

Interpreter::Step Interpreter::pop(const DecodedInstruction& d) {
  CpuState& s = *state_;
  const unsigned size = d.operand_size;
  const uint64_t old_rsp = s.reg(Gpr::kRsp);
  Result<uint64_t> v = access_.read(old_rsp, size);
  if (!v) return memory_fault(v.error());
  // The destination's address uses the incremented rsp; `pop rsp` leaves the popped value.
  s.reg(Gpr::kRsp) = old_rsp + size;
  Result<void> w = write_operand(d.operands[0], d, size, *v);
  if (!w) {
    s.reg(Gpr::kRsp) = old_rsp;
    return memory_fault(w.error());
  }
  return Step::kNext;
}

// ---------------------------------------------------------------------------------------------
// Strings

Interpreter::Step Interpreter::string_op(const DecodedInstruction& d) {
  CpuState& s = *state_;
  if (d.operand_count != 0) return unsupported(d, "vector form");
  if (d.address_size != 8) return unsupported(d, "32-bit addresses");
  const unsigned size = d.operand_size;
  const bool is_movs = d.op == Op::kMovs;
  const bool down = (s.rflags & rflags::kDf) != 0;
  uint64_t& rcx = s.reg(Gpr::kRcx);
  uint64_t& rsi = s.reg(Gpr::kRsi);
  uint64_t& rdi = s.reg(Gpr::kRdi);
  // The source is DS:RSI, and fs: or gs: override DS (the destination is ES:RDI, always flat).
  const uint64_t source_base = d.source_segment == SegmentBase::kFs   ? s.fs_base
                               : d.source_segment == SegmentBase::kGs ? s.gs_base
                                                                      : 0;
  const uint64_t value = s.gpr[0] & width_mask(size * 8);
  uint64_t remaining = d.rep ? rcx : 1;
  uint64_t done_bytes = 0;
  // Each element is an instruction boundary for a rep: stopping early leaves RIP at the rep.
  auto count_done = [&](uint64_t elements) {
    if (d.rep) rcx -= elements;
    remaining -= elements;
    done_bytes += elements * size;
  };
  while (remaining != 0) {
    if (done_bytes >= kRepChunkBytes) {
      next_rip_ = s.rip;  // continue this rep after servicing check()
      return Step::kBranch;
    }
    // Fast path (ascending, whole elements within the current pages, no forward overlap).
    uint64_t chunk = 0;
    const uint64_t source = source_base + rsi;
    if (!down) {
      uint64_t room = 0x1000 - (rdi & 0xfff);
      if (is_movs) room = std::min(room, 0x1000 - (source & 0xfff));
      chunk = std::min(remaining, room / size);
      if (is_movs && rdi > source && rdi - source < chunk * size) chunk = 0;
    }
    if (chunk > 1) {
      const uint64_t bytes = chunk * size;
      Result<std::byte*> dst = access_.page(rdi, Access::kWrite);
      if (!dst) return memory_fault(dst.error());
      if (is_movs) {
        Result<std::byte*> src = access_.page(source, Access::kRead);
        if (!src) return memory_fault(src.error());
        std::memmove(*dst, *src, bytes);
        rsi += bytes;
      } else if (size == 1) {
        std::memset(*dst, static_cast<int>(value), bytes);
      } else {
        for (uint64_t i = 0; i < chunk; ++i)
          store_guest_word(*dst + i * size, size, value);
      }
      access_.note_write(rdi, bytes);
      rdi += bytes;
      count_done(chunk);
      continue;
    }
    // One element, through the general (page-splitting) path.
    uint64_t element = value;
    if (is_movs) {
      Result<uint64_t> v = access_.read(source, size);
      if (!v) return memory_fault(v.error());
      element = *v;
    }
    Result<void> w = access_.write(rdi, size, element);
    if (!w) return memory_fault(w.error());
    const uint64_t step = down ? 0 - uint64_t{size} : uint64_t{size};
    if (is_movs) rsi += step;
    rdi += step;
    count_done(1);
  }
  return Step::kNext;
}

// ---------------------------------------------------------------------------------------------
// Port I/O, cpuid

Interpreter::Step Interpreter::port_io(const DecodedInstruction& d) {
  CpuState& s = *state_;
  const bool is_in = d.op == Op::kIn;
  const Operand& data = is_in ? d.operands[0] : d.operands[1];
  const Operand& port_operand = is_in ? d.operands[1] : d.operands[0];
  const auto size = static_cast<uint8_t>(data.size);
  const auto port = static_cast<uint16_t>(port_operand.kind == OperandKind::kImm
                                              ? static_cast<uint64_t>(port_operand.value) & 0xff
                                              : s.gpr[2] & 0xffff);
  if (is_in) {
    Result<uint32_t> v = env_->port_in(port, size);
    if (!v) {
      return fault(ExitReason::kIoError,
                   "in from port " + hex(port) + " at RIP " + hex(s.rip) + ": " + v.error().message,
                   v.error().code);
    }
    set_reg(0, false, size, *v);
    return Step::kNext;
  }
  const auto value = static_cast<uint32_t>(s.gpr[0] & width_mask(size * 8u));
  Result<PortAction> action = env_->port_out(port, size, value);
  if (!action) {
    return fault(
        ExitReason::kIoError,
        "out to port " + hex(port) + " at RIP " + hex(s.rip) + ": " + action.error().message,
        action.error().code);
  }
  return *action == PortAction::kStop ? Step::kStop : Step::kNext;
}

Interpreter::Step Interpreter::cpuid() {
  CpuState& s = *state_;
  const CpuidLeaf leaf =
      cpuid_leaf(static_cast<uint32_t>(s.gpr[0]), static_cast<uint32_t>(s.gpr[1]));
  s.reg(Gpr::kRax) = leaf.eax;
  s.reg(Gpr::kRbx) = leaf.ebx;
  s.reg(Gpr::kRcx) = leaf.ecx;
  s.reg(Gpr::kRdx) = leaf.edx;
  return Step::kNext;
}

}  // namespace vmfork::soft
