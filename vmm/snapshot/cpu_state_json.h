// A vCPU's engine-neutral state (vmm/hypervisor/cpu_state.h) in state.json:
// every field, by name, so that the file can be read and diffed by people.
// Registers are JSON numbers (exact up to 2^64 in this reader); the engine
// blob is hex bytes tagged with its engine.
#pragma once

#include <nlohmann/json.hpp>

#include "vmm/hypervisor/vcpu.h"
#include "vmm/snapshot/json_fields.h"

namespace vmfork {

nlohmann::json vcpu_to_json(const VcpuSnapshot& vcpu);
// Errors go to `fields` (the returned value is then meaningless).
VcpuSnapshot vcpu_from_json(JsonFields& fields, const JsonFields::Node& node);

// {"engine": "kvm", "hex": "..."}: a vCPU's FPU blob, a PC's chips.
nlohmann::json engine_blob_to_json(const EngineBlob& blob);
EngineBlob engine_blob_from_json(JsonFields& fields, const JsonFields::Node& node);

}  // namespace vmfork
