// GET /metrics: per VM and in total, what the fault path counted (COW
// faults, copies, in-place upgrades, shootdowns), what each space holds
// (private, shared and table frames: exact for paused and exited VMs, whose
// trees are walked with no fault in flight), the engine's own figures (kvm:
// host mappings), the pool's frames, and the fork, restore and snapshot
// latency histograms. As JSON, or as Prometheus' text exposition.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "vmm/api/vm_table.h"
#include "vmm/vm/monitor.h"

namespace vmfork::api {

// One VM's figures: its counters and, when exact, its frames.
nlohmann::json vm_figures(Monitor& monitor, const VmRecord& record);

nlohmann::json metrics_json(Monitor& monitor, const VmTable& table);

// The same figures in Prometheus' text format 0.0.4.
std::string prometheus_text(const nlohmann::json& metrics);

}  // namespace vmfork::api
