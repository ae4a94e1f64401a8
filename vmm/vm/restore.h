// Restoring clones from a snapshot directory (DESIGN section 7): N VMs
// whose memory comes in lazily from the snapshot's memory file, one chunk
// at a time on first touch, and is shared among them until written.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/hypervisor/hypervisor.h"
#include "vmm/snapshot/open_snapshot.h"
#include "vmm/snapshot/write_snapshot.h"
#include "vmm/vm/monitor.h"
#include "vmm/vm/working_set_prefetch.h"

namespace vmfork {

struct RestoreOptions {
  uint32_t clones = 1;
  // Read the whole memory file (every chunk, its checksum checked) before
  // any clone starts, instead of on first touch (the baseline of bench
  // restore).
  bool eager = false;
  // Read the snapshot's recorded working set, if it has one, in the
  // background while the clones run (vmm/snapshot/working_set.h).
  bool prefetch = true;
  // Clone k is named "<name>.k".
  std::string name = "restored";
  // Launch the clones; else they are built and left to the caller, to
  // launch later (the control API's "resume": false).
  bool start = true;
};

struct Restored {
  std::vector<std::string> clones;
  std::shared_ptr<PageCache> cache;              // the clones' (a working set is recorded from it)
  std::unique_ptr<WorkingSetPrefetch> prefetch;  // running, when there is a working set
  uint64_t read_ns = 0;                          // eager: reading the memory file
  uint64_t build_ns = 0;                         // making the clones (spaces, vCPUs, threads)
  std::vector<std::unique_ptr<Vm>> held;         // built, not launched (!options.start)
};

// Starts `options.clones` clones of `snapshot` (checked by open_snapshot)
// on `hypervisor`'s engine: clone k's boot-info clone_id is k (a PC
// guest's: its generation page's, with the generation one past the
// snapshot's), and the vCPU that asked for the snapshot (port 0x511), if any,
// resumes with RAX = k. A PC guest's snapshot is refused on the soft engine.
// Every clone is built before any starts; on an error none does, and the
// error names what failed. `requested_ns` (now_ns()) starts each clone's
// latency to its first instruction.
Result<Restored> restore_clones(Monitor& monitor, Hypervisor& hypervisor,
                                const OpenedSnapshot& snapshot, const RestoreOptions& options,
                                uint64_t requested_ns);

}  // namespace vmfork
