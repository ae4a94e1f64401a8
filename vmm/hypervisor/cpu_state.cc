#include "vmm/hypervisor/cpu_state.h"

namespace vmfork {

namespace {

CpuSegment from_boot(const SegmentRegister& segment) {
  return {.base = segment.base,
          .limit = segment.limit,
          .selector = segment.selector,
          .type = segment.type,
          .dpl = segment.dpl,
          .present = segment.present,
          .default_32bit = segment.default_32bit,
          .code_or_data = segment.code_or_data,
          .long_mode = segment.long_mode,
          .granularity = segment.granularity,
          .available = false,
          .unusable = !segment.present};
}

}  // namespace

CpuState cpu_state_from_boot(const VcpuBootState& boot) {
  CpuState state;
  const GeneralRegisters& r = boot.regs;
  state.regs.gpr = {r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
                    r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
  state.regs.rip = boot.rip;
  state.regs.rflags = boot.rflags;
  CpuSegments& s = state.segments;
  s.cs = from_boot(boot.cs);
  s.ds = from_boot(boot.ds);
  s.es = from_boot(boot.es);
  s.fs = from_boot(boot.fs);
  s.gs = from_boot(boot.gs);
  s.ss = from_boot(boot.ss);
  s.gdt = {boot.gdtr.base, boot.gdtr.limit};
  s.idt = {boot.idtr.base, boot.idtr.limit};
  state.control.cr0 = boot.cr0;
  state.control.cr3 = boot.cr3;
  state.control.cr4 = boot.cr4;
  state.control.efer = boot.efer;
  return state;
}

}  // namespace vmfork
