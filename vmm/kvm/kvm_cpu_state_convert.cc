// kvm_cpu_state.h's conversions to and from the engine-neutral CpuState.
#include <cstring>

#include "vmm/kvm/kvm_cpu_state.h"

namespace vmfork::kvm {

namespace {

CpuSegment to_neutral(const kvm_segment& s) {
  return {.base = s.base,
          .limit = s.limit,
          .selector = s.selector,
          .type = s.type,
          .dpl = s.dpl,
          .present = s.present != 0,
          .default_32bit = s.db != 0,
          .code_or_data = s.s != 0,
          .long_mode = s.l != 0,
          .granularity = s.g != 0,
          .available = s.avl != 0,
          .unusable = s.unusable != 0};
}

kvm_segment from_neutral(const CpuSegment& s) {
  kvm_segment out{};
  out.base = s.base;
  out.limit = s.limit;
  out.selector = s.selector;
  out.type = s.type;
  out.dpl = s.dpl;
  out.present = s.present ? 1 : 0;
  out.db = s.default_32bit ? 1 : 0;
  out.s = s.code_or_data ? 1 : 0;
  out.l = s.long_mode ? 1 : 0;
  out.g = s.granularity ? 1 : 0;
  out.avl = s.available ? 1 : 0;
  out.unusable = s.unusable ? 1 : 0;
  return out;
}

// The blob: kvm_fpu, then the interrupt bitmap, as the kernel lays them out.
struct Blob {
  kvm_fpu fpu;
  decltype(kvm_sregs::interrupt_bitmap) interrupt_bitmap;
};

}  // namespace

CpuState to_neutral(const KvmCpuState& state) {
  CpuState out;
  const kvm_regs& r = state.regs;
  out.regs.gpr = {r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
                  r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
  out.regs.rip = r.rip;
  out.regs.rflags = r.rflags;
  const kvm_sregs& s = state.sregs;
  out.segments = {.cs = to_neutral(s.cs),
                  .ds = to_neutral(s.ds),
                  .es = to_neutral(s.es),
                  .fs = to_neutral(s.fs),
                  .gs = to_neutral(s.gs),
                  .ss = to_neutral(s.ss),
                  .tr = to_neutral(s.tr),
                  .ldt = to_neutral(s.ldt),
                  .gdt = {s.gdt.base, s.gdt.limit},
                  .idt = {s.idt.base, s.idt.limit}};
  out.control = {.cr0 = s.cr0,
                 .cr2 = s.cr2,
                 .cr3 = s.cr3,
                 .cr4 = s.cr4,
                 .cr8 = s.cr8,
                 .efer = s.efer,
                 .apic_base = s.apic_base};
  for (uint32_t i = 0; i < state.msr_count; ++i)
    out.msrs.push_back({state.msrs[i].index, state.msrs[i].value});
  out.tsc_offset = state.tsc_offset;
  Blob blob{state.fpu, {}};
  std::memcpy(blob.interrupt_bitmap, s.interrupt_bitmap, sizeof(blob.interrupt_bitmap));
  out.fpu.engine = Engine::kKvm;
  out.fpu.bytes.resize(sizeof(blob) + (state.pc ? sizeof(PcCpuState) : 0));
  std::memcpy(out.fpu.bytes.data(), &blob, sizeof(blob));
  if (state.pc) std::memcpy(out.fpu.bytes.data() + sizeof(blob), &*state.pc, sizeof(PcCpuState));
  return out;
}

KvmCpuState from_neutral(const CpuState& state) {
  KvmCpuState out;
  kvm_regs& r = out.regs;
  const auto& g = state.regs.gpr;
  r.rax = g[0];
  r.rcx = g[1];
  r.rdx = g[2];
  r.rbx = g[3];
  r.rsp = g[4];
  r.rbp = g[5];
  r.rsi = g[6];
  r.rdi = g[7];
  r.r8 = g[8];
  r.r9 = g[9];
  r.r10 = g[10];
  r.r11 = g[11];
  r.r12 = g[12];
  r.r13 = g[13];
  r.r14 = g[14];
  r.r15 = g[15];
  r.rip = state.regs.rip;
  r.rflags = state.regs.rflags;
  kvm_sregs& s = out.sregs;
  const CpuSegments& seg = state.segments;
  s.cs = from_neutral(seg.cs);
  s.ds = from_neutral(seg.ds);
  s.es = from_neutral(seg.es);
  s.fs = from_neutral(seg.fs);
  s.gs = from_neutral(seg.gs);
  s.ss = from_neutral(seg.ss);
  s.tr = from_neutral(seg.tr);
  s.ldt = from_neutral(seg.ldt);
  s.gdt.base = seg.gdt.base;
  s.gdt.limit = seg.gdt.limit;
  s.idt.base = seg.idt.base;
  s.idt.limit = seg.idt.limit;
  s.cr0 = state.control.cr0;
  s.cr2 = state.control.cr2;
  s.cr3 = state.control.cr3;
  s.cr4 = state.control.cr4;
  s.cr8 = state.control.cr8;
  s.efer = state.control.efer;
  s.apic_base = state.control.apic_base;
  for (const CpuMsr& msr : state.msrs) {
    if (out.msr_count == out.msrs.size()) break;  // more than KVM_GET_MSRS ever gives
    out.msrs[out.msr_count++] = {msr.index, msr.value};
  }
  out.tsc_offset = state.tsc_offset;
  const size_t blob_bytes = state.fpu.bytes.size();
  if (state.fpu.engine == Engine::kKvm &&
      (blob_bytes == sizeof(Blob) || blob_bytes == sizeof(Blob) + sizeof(PcCpuState))) {
    Blob blob;
    std::memcpy(&blob, state.fpu.bytes.data(), sizeof(blob));
    out.fpu = blob.fpu;
    std::memcpy(s.interrupt_bitmap, blob.interrupt_bitmap, sizeof(s.interrupt_bitmap));
    if (blob_bytes > sizeof(Blob)) {
      out.pc.emplace();
      std::memcpy(&*out.pc, state.fpu.bytes.data() + sizeof(Blob), sizeof(PcCpuState));
    }
  } else {
    // FNINIT and reset values: x87 control word 0x37f, MXCSR 0x1f80.
    out.fpu.fcw = 0x37f;
    out.fpu.mxcsr = 0x1f80;
  }
  return out;
}

}  // namespace vmfork::kvm
