#include "vmm/vm/vcpu.h"

namespace vmfork {

void set_rax(VcpuSnapshot& snapshot, uint64_t rax) {
  if (auto* soft = std::get_if<soft::CpuState>(&snapshot.cpu)) {
    soft->reg(soft::Gpr::kRax) = rax;
  } else {
    std::get<kvm::KvmCpuState>(snapshot.cpu).regs.rax = rax;
  }
}

}  // namespace vmfork
