#include "vmm/soft/soft_cpu_state.h"

namespace vmfork::soft {

// Both hold the general registers in SDM encoding order.
static_assert(kGprCount == std::tuple_size_v<decltype(CpuRegisters::gpr)>);

CpuState to_soft(const vmfork::CpuState& state) {
  CpuState cpu;
  cpu.gpr = state.regs.gpr;
  cpu.rip = state.regs.rip;
  cpu.rflags = state.regs.rflags;
  cpu.fs_base = state.segments.fs.base;
  cpu.gs_base = state.segments.gs.base;
  return cpu;
}

void from_soft(const CpuState& cpu, vmfork::CpuState& into) {
  into.regs.gpr = cpu.gpr;
  into.regs.rip = cpu.rip;
  into.regs.rflags = cpu.rflags;
  into.segments.fs.base = cpu.fs_base;
  into.segments.gs.base = cpu.gs_base;
}

}  // namespace vmfork::soft
