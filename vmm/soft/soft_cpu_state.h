// The interpreter's registers in and out of the engine-neutral CpuState.
#pragma once

#include "vmm/hypervisor/cpu_state.h"
#include "vmm/soft/cpu_state.h"

namespace vmfork::soft {

// What the interpreter holds of `state`: the general registers, RIP, RFLAGS
// and the FS and GS bases (its segments are flat).
CpuState to_soft(const vmfork::CpuState& state);
// Writes the interpreter's part of `into`, leaving the rest as it is.
void from_soft(const CpuState& cpu, vmfork::CpuState& into);

}  // namespace vmfork::soft
