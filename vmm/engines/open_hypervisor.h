// The one place that knows every engine: opens the one asked for.
#pragma once

#include <memory>

#include "base/result.h"
#include "vmm/hypervisor/hypervisor.h"

namespace vmfork {

// An OpenHypervisor (vmm/hypervisor/hypervisor.h) for the monitor.
Result<std::unique_ptr<Hypervisor>> open_hypervisor(Engine engine);

}  // namespace vmfork
