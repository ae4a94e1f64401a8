// `vmfork bench fork`: end-to-end fork latency through the fork hypercall,
// from the request (the guest's `out` to port 0x510) to the first guest
// instruction of each clone, by guest RAM size (every page mapped) and
// clone count, beside Linux fork() of a process with the same memory
// touched (DESIGN section 10). For the kvm engine, also beside the soft
// engine and a bare KVM_CREATE_VM + KVM_CREATE_VCPU, in the same run.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"
#include "vmm/bench/clone_memory.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork::bench {

struct ForkBenchOptions {
  Engine engine = Engine::kSoft;
  std::vector<uint64_t> sizes;
  std::vector<uint32_t> clones;
  int repeat = 5;                               // forks per (size, clones)
  int fork_repeat = 11;                         // Linux fork() calls per size
  uint64_t fork_max_bytes = uint64_t{1} << 30;  // no Linux baseline above this
  uint32_t idle_clones = 64;                    // 0: no idle-clone memory figure
  uint64_t idle_ram_bytes = uint64_t{256} << 20;
};

struct ForkBenchRow {
  uint64_t ram_bytes = 0;
  uint32_t clones = 0;
  uint64_t fork_ns_median = 0;  // over every clone of every repeat
  uint64_t fork_ns_max = 0;
  std::optional<uint64_t> linux_fork_ns_median;  // one fork() of the same memory
  // For an engine other than soft: the soft engine's median in the same run.
  std::optional<uint64_t> soft_fork_ns_median;
  // Where the engine's fork time went (ForkPhases, vmm/vm/monitor.h):
  // medians over the repeats, one figure per fork ...
  uint64_t pause_ns_median = 0;
  uint64_t snapshot_ns_median = 0;
  uint64_t build_ns_median = 0;            // every clone of the fork
  uint64_t build_per_clone_ns_median = 0;  // build / clones (rounded down)
  // ... and over every clone of every repeat: its first instruction less
  // the end of the build.
  uint64_t start_ns_median = 0;
};

struct ForkBenchReport {
  Engine engine = Engine::kSoft;
  std::vector<ForkBenchRow> rows;
  // kvm: one bare KVM_CREATE_VM + KVM_CREATE_VCPU on the host (median).
  std::optional<uint64_t> kvm_create_ns_median;
  // What an idle clone costs (clone_memory.h): the engine's, then for an
  // engine other than soft the soft engine's in the same run.
  std::vector<CloneMemoryReport> idle;
};

Result<ForkBenchReport> run_fork_bench(const ForkBenchOptions& options);

}  // namespace vmfork::bench
