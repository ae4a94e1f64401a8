// The kvm engine (DESIGN section 2) behind the engine interface: the host's
// /dev/kvm, each VM a KvmMachine over its realized RAM, each vCPU a thread
// in KVM_RUN (KvmVcpu).
#pragma once

#include <memory>

#include "base/result.h"
#include "vmm/hypervisor/hypervisor.h"

namespace vmfork::kvm {

// Fails with a message naming what the host lacks (kvm_host.h).
Result<std::unique_ptr<Hypervisor>> open_kvm_hypervisor();

}  // namespace vmfork::kvm
