// Frame accounting. The global counts are kept exact by every allocation and
// free; the per-space and sharing figures are computed by walking the trees,
// exact whenever no fault is in flight.
#pragma once

#include <cstdint>
#include <string>

namespace vmfork {

// Every frame of the pool is in exactly one of these states.
struct FrameCounts {
  uint64_t capacity = 0;
  uint64_t free = 0;        // allocatable now (free list + never handed out)
  uint64_t data = 0;        // guest data pages with at least one reference
  uint64_t table = 0;       // EPT tables with at least one reference
  uint64_t reclaiming = 0;  // no reference left, waiting for quiescence
};

// What one address space (or snapshot) reaches from its root.
struct SpaceAccounting {
  uint64_t tables_exclusive = 0;
  uint64_t tables_shared = 0;
  uint64_t data_exclusive = 0;  // every frame on the path has one reference
  uint64_t data_shared = 0;     // reachable, but shared with another space
};

struct MemoryAccounting {
  FrameCounts frames;
  uint64_t data_exclusive = 0;  // owned by exactly one space
  uint64_t data_shared = 0;     // reachable from more than one space
};

// Counters of the fault path, per address space.
struct FaultCounters {
  uint64_t faults = 0;             // handle_fault calls
  uint64_t demand_zero = 0;        // first touch of a page
  uint64_t restored = 0;           // first touch of a restored page (page cache)
  uint64_t copies = 0;             // COW copies (steps 4-8)
  uint64_t in_place = 0;           // write enabled in place (step 3)
  uint64_t shootdowns = 0;         // INVEPT batches initiated
  uint64_t shootdown_wait_ns = 0;  // time their initiators waited for acknowledgements
  uint64_t already_resolved = 0;   // another vCPU finished first (step 2)
};

}  // namespace vmfork
