// The architectural state a vCPU starts with (DESIGN section 8), independent
// of the engine: the kvm engine turns it into kvm_regs/kvm_sregs, the soft
// engine into its interpreter's registers. Plain data, no invariants.
#pragma once

#include <cstdint>

namespace vmfork {

struct GeneralRegisters {
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0;
  uint64_t rsi = 0, rdi = 0, rbp = 0, rsp = 0;
  uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0;
  uint64_t r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  friend bool operator==(const GeneralRegisters&, const GeneralRegisters&) = default;
};

// A segment register with its hidden (descriptor cache) part, field for field
// what kvm_segment holds. The GDT entry its selector names encodes the same
// values (gdt.h), so an engine may load either.
struct SegmentRegister {
  uint16_t selector = 0;
  uint64_t base = 0;
  uint32_t limit = 0;         // in bytes, already scaled by the granularity (0xffffffff when G)
  uint8_t type = 0;           // the descriptor's 4-bit type field
  bool code_or_data = false;  // S: a code or data segment, not a system one
  uint8_t dpl = 0;
  bool present = false;
  bool long_mode = false;      // L: 64-bit code segment
  bool default_32bit = false;  // D/B
  bool granularity = false;    // G: limit counted in 4 KiB units
  friend bool operator==(const SegmentRegister&, const SegmentRegister&) = default;
};

struct DescriptorTableRegister {
  uint64_t base = 0;
  uint16_t limit = 0;  // last valid byte offset
  friend bool operator==(const DescriptorTableRegister&, const DescriptorTableRegister&) = default;
};

struct VcpuBootState {
  GeneralRegisters regs;
  uint64_t rip = 0;
  uint64_t rflags = 0;
  uint64_t cr0 = 0;
  uint64_t cr3 = 0;
  uint64_t cr4 = 0;
  uint64_t efer = 0;
  SegmentRegister cs, ds, es, fs, gs, ss;
  DescriptorTableRegister gdtr;
  DescriptorTableRegister idtr;  // empty: the guest starts with no IDT
  friend bool operator==(const VcpuBootState&, const VcpuBootState&) = default;
};

}  // namespace vmfork
