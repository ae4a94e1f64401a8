// `vmfork bench restore`: restore latency from a snapshot directory (DESIGN
// section 7), by guest RAM size, clone count and mode. Per size, a warm VM
// (every page of its RAM written) snapshots itself once into a temporary
// directory; clones are then restored from it in a fresh monitor each time,
// and timed from just before open_snapshot to each clone's first
// instruction and to the end of every clone (each does a fixed amount of
// work: a read-modify-write of one word in each of --work-pages pages).
// Modes: lazy (chunks read on first touch), eager (the whole memory file
// read first), prefetch (lazy, with the working set recorded by one lazy
// clone read in the background). The ratios between them are measured in
// the same run (DESIGN section 10).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "base/result.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork::bench {

enum class RestoreMode : uint8_t { kLazy, kEager, kPrefetch };
inline constexpr std::array kRestoreModes = {RestoreMode::kLazy, RestoreMode::kEager,
                                             RestoreMode::kPrefetch};
const char* to_string(RestoreMode mode);

struct RestoreBenchOptions {
  Engine engine = Engine::kSoft;
  std::vector<uint64_t> sizes;
  std::vector<uint32_t> clones;
  int repeat = 3;              // restores per (size, clones, mode)
  uint32_t work_pages = 1024;  // pages each clone reads and writes one word of
};

// The snapshot a size's restores come from.
struct RestoreSnapshotRow {
  uint64_t ram_bytes = 0;
  uint64_t pause_ns = 0;            // the VM paused (Monitor::snapshots())
  uint64_t write_ns = 0;            // the files written
  uint64_t pages = 0;               // stored in the memory file
  uint64_t working_set_chunks = 0;  // recorded by one lazy clone, for the prefetch mode
  // What state.json costs open_snapshot (it holds no per-chunk list, which
  // is in the binary chunk table, so it stays small whatever the RAM):
  // reading the file, parsing it as JSON, and parse_state_json (the parse
  // again, its self-checksum and every field checked), each timed once.
  uint64_t state_bytes = 0;
  uint64_t state_read_ns = 0;
  uint64_t state_json_parse_ns = 0;
  uint64_t state_check_ns = 0;
};

struct RestoreBenchRow {
  uint64_t ram_bytes = 0;
  uint32_t clones = 0;
  RestoreMode mode = RestoreMode::kLazy;
  // From just before open_snapshot to each clone's first instruction, over
  // every clone of every repeat.
  uint64_t first_ns_median = 0;
  uint64_t first_ns_max = 0;
  // The same less the run's open_snapshot time: the restore proper.
  uint64_t first_after_open_ns_median = 0;
  // From just before open_snapshot to Monitor::wait() returning (every clone
  // did its work and ended), over the repeats.
  uint64_t work_ns_median = 0;
  // Where the time to the first instruction goes, medians over the repeats:
  // open_snapshot, reading the memory file (eager only), building the clones
  // (spaces, vCPUs, threads).
  uint64_t open_ns_median = 0;
  uint64_t read_ns_median = 0;
  uint64_t build_ns_median = 0;
};

struct RestoreBenchReport {
  Engine engine = Engine::kSoft;
  uint32_t work_pages = 0;
  int repeat = 0;
  std::vector<RestoreSnapshotRow> snapshots;  // one per size, in --sizes order
  std::vector<RestoreBenchRow> rows;          // by size, then clones, then mode
};

Result<RestoreBenchReport> run_restore_bench(const RestoreBenchOptions& options);

}  // namespace vmfork::bench
