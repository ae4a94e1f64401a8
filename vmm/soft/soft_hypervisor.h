// The soft engine (DESIGN section 2) behind the engine interface: each vCPU
// a thread running the interpreter over its own TLB and the project's EPT.
#pragma once

#include <memory>

#include "vmm/hypervisor/hypervisor.h"

namespace vmfork::soft {

std::unique_ptr<Hypervisor> open_soft_hypervisor();

}  // namespace vmfork::soft
