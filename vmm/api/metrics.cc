#include "vmm/api/metrics.h"

#include <fmt/format.h>

#include <map>

namespace vmfork::api {

namespace {

nlohmann::json faults_json(const FaultCounters& faults) {
  return {{"faults", faults.faults},
          {"demand_zero", faults.demand_zero},
          {"restored", faults.restored},
          {"copies", faults.copies},
          {"in_place", faults.in_place},
          {"shootdowns", faults.shootdowns},
          {"shootdown_wait_ns", faults.shootdown_wait_ns},
          {"already_resolved", faults.already_resolved}};
}

nlohmann::json frames_json(const SpaceAccounting& frames) {
  return {{"private", frames.data_exclusive},
          {"shared", frames.data_shared},
          {"tables_private", frames.tables_exclusive},
          {"tables_shared", frames.tables_shared}};
}

nlohmann::json engine_json(const std::vector<EngineCounter>& counters) {
  nlohmann::json result = nlohmann::json::object();
  for (const EngineCounter& counter : counters)
    result[counter.name] = counter.value;
  return result;
}

nlohmann::json histogram_json(const LatencyHistogram& histogram) {
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i)
    buckets.push_back({{"le_ns", LatencyHistogram::bound(i)}, {"count", histogram.at_most(i)}});
  return {{"count", histogram.count()}, {"sum_ns", histogram.sum_ns()}, {"buckets", buckets}};
}

// A label value, escaped as the exposition format wants.
std::string label(const std::string& value) {
  std::string result;
  for (char c : value) {
    if (c == '\\' || c == '"') result.push_back('\\');
    if (c == '\n') {
      result += "\\n";
      continue;
    }
    result.push_back(c);
  }
  return result;
}

}  // namespace

nlohmann::json vm_figures(Monitor& monitor, const VmRecord& record) {
  nlohmann::json figures = {{"faults", nullptr}, {"frames", nullptr}, {"engine", nullptr}};
  if (record.ended) {
    figures["faults"] = faults_json(record.ended->faults);
    figures["frames"] = frames_json(record.ended->frames);
    figures["engine"] = engine_json(record.ended->engine);
    return figures;
  }
  if (record.state == VmState::kHeld) return figures;
  // It may end meanwhile: then the figures stay null until the table has them.
  (void)monitor.with_vm(record.id, [&figures](Vm& vm) {
    figures["faults"] = faults_json(vm.space().counters());
    figures["engine"] = engine_json(vm.engine_counters());
    if (Result<SpaceAccounting> frames = vm.account_while_paused(); frames) {
      figures["frames"] = frames_json(*frames);
    }
  });
  return figures;
}

nlohmann::json metrics_json(Monitor& monitor, const VmTable& table) {
  std::map<std::string, uint64_t> states = {{"Running", 0}, {"Paused", 0}, {"Exited", 0}};
  nlohmann::json per_vm = nlohmann::json::object();
  std::map<std::string, uint64_t> total_faults;
  for (const VmRecord& record : table.all()) {
    ++states[to_string(record.state)];
    nlohmann::json figures = vm_figures(monitor, record);
    figures["state"] = to_string(record.state);
    if (figures["faults"].is_object()) {
      for (const auto& [name, value] : figures["faults"].items())
        total_faults[name] += value.get<uint64_t>();
    }
    per_vm[record.id] = std::move(figures);
  }
  const FrameCounts frames = monitor.memory().frame_counts();
  const Histograms histograms = table.histograms();
  const Monitor::Tally tally = monitor.tally();
  return {
      {"vms",
       {{"running", states["Running"]},
        {"paused", states["Paused"]},
        {"exited", states["Exited"]},
        {"launched", tally.launched},
        {"failed", tally.failed}}},
      {"pool_frames",
       {{"capacity", frames.capacity},
        {"free", frames.free},
        {"data", frames.data},
        {"table", frames.table},
        {"reclaiming", frames.reclaiming}}},
      {"faults", total_faults},
      {"latency",
       {{"fork", histogram_json(histograms.fork)},
        {"restore", histogram_json(histograms.restore)},
        {"snapshot_pause", histogram_json(histograms.snapshot_pause)},
        {"snapshot_write", histogram_json(histograms.snapshot_write)}}},
      {"per_vm", per_vm},
  };
}

std::string prometheus_text(const nlohmann::json& metrics) {
  std::string out;
  const auto family = [&out](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("vmfork_vms", "gauge", "VMs the daemon knows, by state.");
  for (const auto& [state, count] : metrics["vms"].items()) {
    if (state == "launched" || state == "failed") continue;
    out += fmt::format("vmfork_vms{{state=\"{}\"}} {}\n", state, count.get<uint64_t>());
  }
  family("vmfork_vms_launched_total", "counter", "VMs launched since the daemon started.");
  out += fmt::format("vmfork_vms_launched_total {}\n", metrics["vms"]["launched"].get<uint64_t>());
  family("vmfork_vms_failed_total", "counter", "VMs that ended with a non-zero status.");
  out += fmt::format("vmfork_vms_failed_total {}\n", metrics["vms"]["failed"].get<uint64_t>());
  family("vmfork_pool_frames", "gauge", "Frames of the shared pool, by state.");
  for (const auto& [state, count] : metrics["pool_frames"].items())
    out += fmt::format("vmfork_pool_frames{{state=\"{}\"}} {}\n", state, count.get<uint64_t>());
  family("vmfork_faults_total", "counter", "Fault-path events of every VM, by kind.");
  for (const auto& [kind, count] : metrics["faults"].items())
    out += fmt::format("vmfork_faults_total{{kind=\"{}\"}} {}\n", kind, count.get<uint64_t>());

  family("vmfork_vm_faults_total", "counter", "Fault-path events of one VM, by kind.");
  for (const auto& [vm, figures] : metrics["per_vm"].items()) {
    if (!figures["faults"].is_object()) continue;
    for (const auto& [kind, count] : figures["faults"].items()) {
      out += fmt::format("vmfork_vm_faults_total{{vm=\"{}\",kind=\"{}\"}} {}\n", label(vm), kind,
                         count.get<uint64_t>());
    }
  }
  family("vmfork_vm_frames", "gauge",
         "Frames one VM's space holds (paused or exited VMs: walked with no fault in flight).");
  for (const auto& [vm, figures] : metrics["per_vm"].items()) {
    if (!figures["frames"].is_object()) continue;
    for (const auto& [kind, count] : figures["frames"].items()) {
      out += fmt::format("vmfork_vm_frames{{vm=\"{}\",kind=\"{}\"}} {}\n", label(vm), kind,
                         count.get<uint64_t>());
    }
  }
  family("vmfork_vm_engine", "gauge", "The engine's own figures of one VM (kvm: host mappings).");
  for (const auto& [vm, figures] : metrics["per_vm"].items()) {
    if (!figures["engine"].is_object()) continue;
    for (const auto& [name, value] : figures["engine"].items()) {
      out += fmt::format("vmfork_vm_engine{{vm=\"{}\",counter=\"{}\"}} {}\n", label(vm), name,
                         value.get<uint64_t>());
    }
  }
  for (const auto& [name, histogram] : metrics["latency"].items()) {
    const std::string metric = fmt::format("vmfork_{}_seconds", name);
    family(metric.c_str(), "histogram", "Latency histogram (see the README's API section).");
    for (const nlohmann::json& bucket : histogram["buckets"]) {
      out += fmt::format("{}_bucket{{le=\"{:.9f}\"}} {}\n", metric,
                         static_cast<double>(bucket["le_ns"].get<uint64_t>()) / 1e9,
                         bucket["count"].get<uint64_t>());
    }
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", metric, histogram["count"].get<uint64_t>());
    out += fmt::format("{}_sum {:.9f}\n", metric,
                       static_cast<double>(histogram["sum_ns"].get<uint64_t>()) / 1e9);
    out += fmt::format("{}_count {}\n", metric, histogram["count"].get<uint64_t>());
  }
  return out;
}

}  // namespace vmfork::api
