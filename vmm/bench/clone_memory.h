// What an idle clone costs the host (issue 13's memory target: at most
// 64 KiB per clone plus what it writes): a VM of `ram_bytes` with every page
// mapped is paused and forked from outside into `clones` clones, each
// paused at once; the process's PSS, the host kernel's slab and vmalloc,
// and the frame accounting are read before the fork and after.
#pragma once

#include <cstdint>
#include <optional>

#include "base/result.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork::bench {

struct CloneMemoryOptions {
  Engine engine = Engine::kSoft;
  uint64_t ram_bytes = uint64_t{256} << 20;
  uint32_t clones = 64;
};

struct CloneMemoryReport {
  Engine engine = Engine::kSoft;
  uint64_t ram_bytes = 0;
  uint32_t clones = 0;
  // Per clone: the process's PSS (smaps_rollup), which counts the pool's
  // frames the clones made resident, their threads, heap and engine state.
  int64_t pss_bytes = 0;
  // Per clone: the kernel's Slab + VmallocUsed (/proc/meminfo). Host-wide,
  // so other work on the host shows here too; on kvm it is where KVM's own
  // per-VM and per-memslot state lives.
  int64_t kernel_bytes = 0;
  // Per clone, from the frame accounting (exact: every clone is paused):
  // the frames only it reaches, data and EPT tables.
  uint64_t private_data_frames = 0;
  uint64_t private_table_frames = 0;
  // kvm: the host mappings (VMAs) per clone.
  std::optional<uint64_t> host_mappings;
};

Result<CloneMemoryReport> measure_clone_memory(const CloneMemoryOptions& options);

}  // namespace vmfork::bench
