#include "vmm/kvm/kvm_cpu_state.h"

#include "vmm/boot/exception_handlers.h"
#include "vmm/boot/monitor_area.h"

namespace vmfork::kvm {

namespace {

kvm_segment to_kvm(const SegmentRegister& segment) {
  kvm_segment out{};
  out.base = segment.base;
  out.limit = segment.limit;
  out.selector = segment.selector;
  out.type = segment.type;
  out.present = segment.present ? 1 : 0;
  out.dpl = segment.dpl;
  out.db = segment.default_32bit ? 1 : 0;
  out.s = segment.code_or_data ? 1 : 0;
  out.l = segment.long_mode ? 1 : 0;
  out.g = segment.granularity ? 1 : 0;
  out.unusable = segment.present ? 0 : 1;
  return out;
}

// A system segment of `type` at base 0 (TR and LDTR have no GDT entry here;
// VM entry only checks their hidden parts).
kvm_segment system_segment(uint8_t type, uint32_t limit, bool usable) {
  kvm_segment out{};
  out.limit = limit;
  out.type = type;
  out.present = usable ? 1 : 0;
  out.unusable = usable ? 0 : 1;
  return out;
}

}  // namespace

KvmCpuState kvm_start_state(const VcpuBootState& boot) {
  KvmCpuState state;
  kvm_regs& r = state.regs;
  r.rax = boot.regs.rax;
  r.rbx = boot.regs.rbx;
  r.rcx = boot.regs.rcx;
  r.rdx = boot.regs.rdx;
  r.rsi = boot.regs.rsi;
  r.rdi = boot.regs.rdi;
  r.rbp = boot.regs.rbp;
  r.rsp = boot.regs.rsp;
  r.r8 = boot.regs.r8;
  r.r9 = boot.regs.r9;
  r.r10 = boot.regs.r10;
  r.r11 = boot.regs.r11;
  r.r12 = boot.regs.r12;
  r.r13 = boot.regs.r13;
  r.r14 = boot.regs.r14;
  r.r15 = boot.regs.r15;
  r.rip = boot.rip;
  r.rflags = boot.rflags;

  kvm_sregs& s = state.sregs;
  s.cs = to_kvm(boot.cs);
  s.ds = to_kvm(boot.ds);
  s.es = to_kvm(boot.es);
  s.fs = to_kvm(boot.fs);
  s.gs = to_kvm(boot.gs);
  s.ss = to_kvm(boot.ss);
  s.tr = system_segment(11, 0xffff, true);  // 64-bit busy TSS
  s.ldt = system_segment(2, 0xffff, false);
  s.gdt.base = boot.gdtr.base;
  s.gdt.limit = boot.gdtr.limit;
  // The guest has no IDT of its own (DESIGN section 8); the monitor's
  // reporters stand in, so an exception ends the VM with its name and RIP
  // instead of a triple fault that loses both.
  s.idt.base = kIdtGpa.value();
  s.idt.limit = kIdtLimit;
  s.cr0 = boot.cr0;
  s.cr3 = boot.cr3;
  s.cr4 = boot.cr4;
  s.efer = boot.efer;
  s.apic_base = 0xfee00000 | (1u << 11);  // enabled, xAPIC mode (unused: no irqchip)

  // FNINIT and reset values: x87 control word 0x37f, MXCSR 0x1f80.
  state.fpu.fcw = 0x37f;
  state.fpu.mxcsr = 0x1f80;
  return state;
}

}  // namespace vmfork::kvm
