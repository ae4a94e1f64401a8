// The KVM baselines the kvm engine's figures are judged against, measured
// in the same run: what the host's KVM itself costs, without vmfork.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace vmfork::bench {

// Median time of KVM_CREATE_VM and one KVM_CREATE_VCPU (and closing both
// after the clock stops) on the host's /dev/kvm: what every new VM costs
// the kernel before it has memory or state.
Result<uint64_t> kvm_create_vm_ns_median(int repeat);

}  // namespace vmfork::bench
