#include "vmm/bench/clone_memory.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vmm/bench/guest_code.h"
#include "vmm/bench/host_memory.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"

namespace vmfork::bench {

namespace {

struct HostMemory {
  int64_t pss = 0;     // this process's
  int64_t kernel = 0;  // the host's Slab + VmallocUsed
};

Result<HostMemory> host_memory() {
  Result<uint64_t> pss = proc_kb_field("/proc/self/smaps_rollup", "Pss");
  if (!pss) return pss.error();
  Result<uint64_t> slab = proc_kb_field("/proc/meminfo", "Slab");
  if (!slab) return slab.error();
  Result<uint64_t> vmalloc = proc_kb_field("/proc/meminfo", "VmallocUsed");
  if (!vmalloc) return vmalloc.error();
  return HostMemory{.pss = static_cast<int64_t>(*pss),
                    .kernel = static_cast<int64_t>(*slab + *vmalloc)};
}

// Runs `use` on the VM `name`, passing on its error.
Result<void> on_vm(Monitor& monitor, const std::string& name,
                   const std::function<Result<void>(Vm&)>& use) {
  Result<void> result;
  Result<void> found = monitor.with_vm(name, [&](Vm& vm) { result = use(vm); });
  if (!found) return found.error();
  return result;
}

// Pauses `name` and adds what its space and engine hold to `report`.
Result<void> pause_and_count(Monitor& monitor, const std::string& name, CloneMemoryReport& report) {
  return on_vm(monitor, name, [&report](Vm& vm) -> Result<void> {
    if (Result<void> paused = vm.pause(); !paused) return paused.error();
    Result<SpaceAccounting> space = vm.account_while_paused();
    if (!space) return space.error();
    report.private_data_frames += space->data_exclusive;
    report.private_table_frames += space->tables_exclusive;
    for (const EngineCounter& counter : vm.engine_counters()) {
      if (counter.name == "host_mappings") {
        report.host_mappings = report.host_mappings.value_or(0) + counter.value;
      }
    }
    return {};
  });
}

Result<CloneMemoryReport> measure(Monitor& monitor, const CloneMemoryOptions& options) {
  Result<GuestLayout> layout = GuestLayout::create(options.ram_bytes, 1);
  if (!layout) return layout.error();
  Result<std::unique_ptr<Vm>> vm =
      boot_code(monitor, options.engine, "vm0", spin_forever_code(), *layout, MapAllRam::kYes);
  if (!vm) return vm.error();
  if (Result<void> launched = monitor.launch(std::move(*vm)); !launched) return launched.error();
  if (Result<void> paused = on_vm(monitor, "vm0", [](Vm& parent) { return parent.pause(); });
      !paused) {
    return paused.error();
  }
  Result<HostMemory> before = host_memory();
  if (!before) return before.error();

  std::vector<std::string> clones;
  if (Result<void> forked = on_vm(monitor, "vm0",
                                  [&](Vm& parent) -> Result<void> {
                                    Result<std::vector<std::string>> names =
                                        parent.fork_from_outside(options.clones);
                                    if (!names) return names.error();
                                    clones = std::move(*names);
                                    return {};
                                  });
      !forked) {
    return forked.error();
  }
  CloneMemoryReport report;
  report.engine = options.engine;
  report.ram_bytes = options.ram_bytes;
  report.clones = options.clones;
  for (const std::string& clone : clones) {
    if (Result<void> counted = pause_and_count(monitor, clone, report); !counted) {
      return counted.error();
    }
  }
  Result<HostMemory> after = host_memory();
  if (!after) return after.error();
  const auto per_clone = [&](int64_t bytes) {
    return bytes / static_cast<int64_t>(options.clones);
  };
  report.pss_bytes = per_clone(after->pss - before->pss);
  report.kernel_bytes = per_clone(after->kernel - before->kernel);
  report.private_data_frames /= options.clones;
  report.private_table_frames /= options.clones;
  if (report.host_mappings) *report.host_mappings /= options.clones;
  spdlog::info("clone memory: {} clones of {} on the {} engine: {} B of PSS, {} B of kernel each",
               options.clones, options.ram_bytes, to_string(options.engine), report.pss_bytes,
               report.kernel_bytes);
  return report;
}

}  // namespace

Result<CloneMemoryReport> measure_clone_memory(const CloneMemoryOptions& options) {
  if (options.clones == 0) {
    return make_error(ErrorCode::kInvalidArgument, "the idle clone count must be at least 1");
  }
  const uint64_t pool_bytes = options.ram_bytes + options.ram_bytes / 256 +
                              (uint64_t{options.clones} << 16) + (uint64_t{16} << 20);
  Result<std::unique_ptr<Monitor>> monitor =
      Monitor::create(open_hypervisor, pool_bytes, Populate::kOnDemand);
  if (!monitor) return monitor.error();
  Result<CloneMemoryReport> report = measure(**monitor, options);
  // Every VM ends, paused or not, and is destroyed before the monitor.
  (*monitor)->stop_all(0);
  (void)(*monitor)->wait();
  return report;
}

}  // namespace vmfork::bench
