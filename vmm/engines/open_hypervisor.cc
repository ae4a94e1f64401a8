#include "vmm/engines/open_hypervisor.h"

#include "vmm/kvm/kvm_hypervisor.h"
#include "vmm/soft/soft_hypervisor.h"

namespace vmfork {

Result<std::unique_ptr<Hypervisor>> open_hypervisor(Engine engine) {
  switch (engine) {
    case Engine::kSoft:
      return soft::open_soft_hypervisor();
    case Engine::kKvm:
      return kvm::open_kvm_hypervisor();
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown engine");
}

}  // namespace vmfork
