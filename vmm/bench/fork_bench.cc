#include "vmm/bench/fork_bench.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

#include "vmm/bench/guest_code.h"
#include "vmm/bench/host_memory.h"
#include "vmm/bench/kvm_baseline.h"
#include "vmm/bench/linux_baseline.h"
#include "vmm/bench/pool_warmup.h"
#include "vmm/bench/progress.h"
#include "vmm/bench/stats.h"
#include "vmm/cli/size_arg.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"

namespace vmfork::bench {

namespace {

// One fork of the bench: each clone's latency, and where the fork's time went.
struct ForkSample {
  std::vector<uint64_t> latencies;
  ForkPhases phases;
};

// Every repeat's figures for one row.
struct ForkSamples {
  std::vector<uint64_t> latencies;  // every clone's
  std::vector<uint64_t> starts;     // every clone's
  std::vector<uint64_t> pauses;     // then one per fork
  std::vector<uint64_t> snapshots;
  std::vector<uint64_t> builds;
  std::vector<uint64_t> builds_per_clone;

  void add(const ForkSample& sample) {
    const ForkPhases& phases = sample.phases;
    // A clone starts after the build (its threads are launched then), so
    // its latency covers the request to the build's end; clamped all the
    // same, since an unsigned difference must not wrap.
    const uint64_t until_built = phases.built_at_ns - phases.requested_ns;
    for (const uint64_t latency : sample.latencies) {
      latencies.push_back(latency);
      starts.push_back(latency > until_built ? latency - until_built : 0);
    }
    pauses.push_back(phases.pause_ns);
    snapshots.push_back(phases.snapshot_ns);
    builds.push_back(phases.build_ns);
    builds_per_clone.push_back(phases.build_ns / phases.clones);
  }
};

// One VM of one vCPU with every page of RAM mapped forks `clones` clones;
// returns each clone's latency and the fork's phases.
Result<ForkSample> fork_once(Engine engine, uint64_t ram_bytes, uint32_t clones) {
  Result<GuestLayout> layout = GuestLayout::create(ram_bytes, 1);
  if (!layout) return layout.error();
  // Mapped frames are never written (an on-demand pool costs no host memory
  // for them); each clone writes its boot-info page, and has a root.
  const uint64_t pool_bytes =
      ram_bytes + ram_bytes / 256 + (uint64_t{clones} << 16) + (uint64_t{16} << 20);
  Result<std::unique_ptr<Monitor>> monitor =
      Monitor::create(open_hypervisor, pool_bytes, Populate::kOnDemand);
  if (!monitor) return monitor.error();
  Result<std::unique_ptr<Vm>> vm =
      boot_code(**monitor, engine, "vm0", fork_then_halt_code(clones), *layout, MapAllRam::kYes);
  if (!vm) return vm.error();
  // What the clones take (their tables and boot-info pages, within the
  // pool's allowance per clone above), populated now as a monitor with
  // Populate::kAhead would have: the fork then takes no host page fault.
  const uint64_t clone_frame_bytes = (uint64_t{clones} << 16) + (uint64_t{1} << 20);
  if (Result<void> warm = populate_pool_ahead((*monitor)->memory(), clone_frame_bytes); !warm) {
    return warm.error();
  }
  if (Result<void> launched = (*monitor)->launch(std::move(*vm)); !launched) {
    return launched.error();
  }
  if (const int status = (*monitor)->wait(); status != 0) {
    return make_error(ErrorCode::kInternal,
                      "the fork bench guest ended with status " + std::to_string(status));
  }
  ForkSample sample;
  for (const ForkLatency& fork : (*monitor)->fork_latencies())
    sample.latencies.push_back(fork.ns);
  if (sample.latencies.size() != clones) {
    return make_error(ErrorCode::kInternal, "expected " + std::to_string(clones) + " clones, saw " +
                                                std::to_string(sample.latencies.size()));
  }
  const std::vector<ForkPhases> forks = (*monitor)->fork_phases();
  if (forks.size() != 1 || forks[0].clones != clones) {
    return make_error(ErrorCode::kInternal, "expected one fork of " + std::to_string(clones) +
                                                " clones, saw " + std::to_string(forks.size()) +
                                                " fork(s)");
  }
  sample.phases = forks[0];
  return sample;
}

// The row's engine figures, from every repeat's.
void set_engine_figures(ForkBenchRow& row, const ForkSamples& samples) {
  row.fork_ns_median = median(samples.latencies);
  row.fork_ns_max = maximum(samples.latencies);
  row.pause_ns_median = median(samples.pauses);
  row.snapshot_ns_median = median(samples.snapshots);
  row.build_ns_median = median(samples.builds);
  row.build_per_clone_ns_median = median(samples.builds_per_clone);
  row.start_ns_median = median(samples.starts);
}

}  // namespace

Result<ForkBenchReport> run_fork_bench(const ForkBenchOptions& options) {
  // Refused before anything runs.
  if (options.idle_clones > 0) {
    if (Result<GuestLayout> idle = GuestLayout::create(options.idle_ram_bytes, 1); !idle) {
      return make_error(idle.error().code, "--idle-mem: " + idle.error().message);
    }
  }
  for (uint64_t ram_bytes : options.sizes) {
    if (ram_bytes <= options.fork_max_bytes) {
      if (Result<void> fits = require_available_memory(ram_bytes, "the Linux fork baseline");
          !fits) {
        return fits.error();
      }
    }
  }
  ForkBenchReport report;
  report.engine = options.engine;
  if (options.engine == Engine::kKvm) {
    Result<uint64_t> create = kvm_create_vm_ns_median(options.fork_repeat);
    if (!create) return create.error();
    report.kvm_create_ns_median = *create;
  }
  // One run per fork_once: every repeat of every (size, clones), twice for
  // an engine other than soft (the soft engine beside it).
  const int engines = options.engine == Engine::kSoft ? 1 : 2;
  Progress progress("bench fork", static_cast<int>(options.sizes.size() * options.clones.size()) *
                                      options.repeat * engines);
  for (uint64_t ram_bytes : options.sizes) {
    // Before any VM thread exists: the baseline forks this process.
    std::optional<uint64_t> linux_ns;
    if (ram_bytes <= options.fork_max_bytes) {
      Result<uint64_t> measured = linux_fork_ns_median(ram_bytes, options.fork_repeat);
      if (!measured) return measured.error();
      linux_ns = *measured;
    }
    for (uint32_t clones : options.clones) {
      ForkSamples samples;
      const std::string what = fmt::format("{} x {} clone(s)", cli::format_size(ram_bytes), clones);
      for (int i = 0; i < options.repeat; ++i) {
        progress.start_run(what);
        Result<ForkSample> sample = fork_once(options.engine, ram_bytes, clones);
        if (!sample) return sample.error();
        samples.add(*sample);
      }
      ForkBenchRow row;
      row.ram_bytes = ram_bytes;
      row.clones = clones;
      row.linux_fork_ns_median = linux_ns;
      set_engine_figures(row, samples);
      if (options.engine != Engine::kSoft) {
        std::vector<uint64_t> soft;
        for (int i = 0; i < options.repeat; ++i) {
          progress.start_run(what + " (soft engine)");
          Result<ForkSample> sample = fork_once(Engine::kSoft, ram_bytes, clones);
          if (!sample) return sample.error();
          soft.insert(soft.end(), sample->latencies.begin(), sample->latencies.end());
        }
        row.soft_fork_ns_median = median(soft);
      }
      spdlog::info("fork bench: {} with {} clone(s): median {} ns", cli::format_size(ram_bytes),
                   clones, row.fork_ns_median);
      report.rows.push_back(row);
    }
  }
  if (options.idle_clones > 0) {
    std::vector<Engine> idle_engines = {options.engine};
    if (options.engine != Engine::kSoft) idle_engines.push_back(Engine::kSoft);
    for (const Engine engine : idle_engines) {
      Result<CloneMemoryReport> idle = measure_clone_memory(
          {.engine = engine, .ram_bytes = options.idle_ram_bytes, .clones = options.idle_clones});
      if (!idle) return idle.error();
      report.idle.push_back(*idle);
    }
  }
  return report;
}

}  // namespace vmfork::bench
