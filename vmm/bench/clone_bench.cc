#include "vmm/bench/clone_bench.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "vmm/bench/host_memory.h"
#include "vmm/bench/linux_baseline.h"
#include "vmm/bench/stats.h"
#include "vmm/cli/size_arg.h"
#include "vmm/clock.h"

namespace vmfork::bench {

namespace {

constexpr int kWarmupClones = 5;
// The largest size whose pool (pool_bytes_for) stays within the frame
// pool's limit of 2^32 - 1 frames (just under 16 TiB).
constexpr uint64_t kMaxRamBytes = uint64_t{8} << 40;

// Frames for the page tables of a fully mapped space (one PT per 512 pages,
// a PD per 512 PTs, ...), plus the clones' roots and some headroom.
uint64_t pool_bytes_for(uint64_t ram_bytes) {
  return ram_bytes + ram_bytes / 256 + (uint64_t{4} << 20);
}

// Host memory a fully mapped space of `ram_bytes` really touches. Its data
// frames are never written, so the sparse pool costs nothing for them; its
// page tables are written (8 bytes of a PT per page, about 1/512 of the
// size, a little more for the levels above), and so is each allocated
// frame's word of the frame table (8 bytes per page).
uint64_t host_bytes_for(uint64_t ram_bytes) {
  const uint64_t pages = ram_bytes / kPageSize;
  return pages * sizeof(uint64_t) * 2 + pages / 512 * sizeof(uint64_t) + (uint64_t{4} << 20);
}

// One timed clone. The clone is destroyed, untimed, before the next one.
Result<uint64_t> time_one_clone(AddressSpace& space) {
  const uint64_t start = now_ns();
  Result<std::unique_ptr<AddressSpace>> clone = space.clone("clone");
  const uint64_t elapsed = now_ns() - start;
  if (!clone) return clone.error();
  clone->reset();
  // Two reclamation passes (no vCPU is online, so each advances the epoch)
  // put the clone's root frame back on the free list. The next clone then
  // takes a recycled frame, as it would in a monitor whose pool is
  // populated ahead; a fresh frame of this on-demand pool would instead
  // charge the clone a host page fault that the monitor never takes.
  space.memory().reclaimer().collect();
  space.memory().reclaimer().collect();
  return elapsed;
}

Result<CloneBenchRow> measure_clone(uint64_t ram_bytes, int repeat) {
  CloneBenchRow row;
  row.ram_bytes = ram_bytes;
  // On demand: data frames are mapped but never written, so the sparse memfd
  // costs no host memory even at 16 GiB.
  Result<std::unique_ptr<GuestMemory>> memory = GuestMemory::create(
      {.pool_bytes = pool_bytes_for(ram_bytes), .populate = Populate::kOnDemand});
  if (!memory) return memory.error();
  Result<std::unique_ptr<AddressSpace>> space = (*memory)->create_space("source", ram_bytes);
  if (!space) return space.error();

  const uint64_t populate_start = now_ns();
  if (Result<void> populated = (*space)->populate(Gpa(0), ram_bytes); !populated) {
    return populated.error();
  }
  row.populate_ns = now_ns() - populate_start;
  spdlog::info("clone bench: mapped {} ({} pages) in {:.3f} s", cli::format_size(ram_bytes),
               ram_bytes / kPageSize, static_cast<double>(row.populate_ns) * 1e-9);

  for (int i = 0; i < kWarmupClones; ++i) {
    if (Result<uint64_t> warm = time_one_clone(**space); !warm) return warm.error();
  }
  std::vector<uint64_t> samples;
  samples.reserve(static_cast<size_t>(repeat));
  for (int i = 0; i < repeat; ++i) {
    Result<uint64_t> elapsed = time_one_clone(**space);
    if (!elapsed) return elapsed.error();
    samples.push_back(*elapsed);
  }
  row.clone_ns_median = median(samples);
  row.clone_ns_min = minimum(samples);
  spdlog::debug("clone bench: {} clone median {} ns, min {} ns, max {} ns",
                cli::format_size(ram_bytes), row.clone_ns_median, row.clone_ns_min,
                maximum(samples));
  return row;
}

}  // namespace

Result<CloneBenchReport> run_clone_bench(const CloneBenchOptions& options) {
  for (uint64_t ram_bytes : options.sizes) {
    if (ram_bytes > kMaxRamBytes) {
      return make_error(ErrorCode::kInvalidArgument,
                        "guest RAM of " + cli::format_size(ram_bytes) + " is above the " +
                            cli::format_size(kMaxRamBytes) + " this bench supports");
    }
    // Refused up front: populating a size whose tables the host cannot
    // hold would grow until the OOM killer came.
    if (Result<void> fits =
            require_available_memory(host_bytes_for(ram_bytes),
                                     "a fully mapped guest RAM of " + cli::format_size(ram_bytes) +
                                         " (its page tables and frame table)");
        !fits) {
      return fits.error();
    }
    if (ram_bytes <= options.fork_max_bytes) {
      if (Result<void> fits = require_available_memory(ram_bytes, "the Linux fork baseline");
          !fits) {
        return fits.error();
      }
    }
  }
  // Untimed: the first pool and the first clones of the process are slower
  // (cold code and allocator); no size should pay for that.
  if (Result<CloneBenchRow> warm = measure_clone(options.sizes.front(), 1); !warm) {
    return warm.error();
  }

  CloneBenchReport report;
  for (uint64_t ram_bytes : options.sizes) {
    // The GuestMemory is gone before fork() is timed, so the baseline
    // process holds only the touched memory.
    Result<CloneBenchRow> row = measure_clone(ram_bytes, options.repeat);
    if (!row) return row.error();
    if (ram_bytes <= options.fork_max_bytes) {
      Result<uint64_t> fork_ns = linux_fork_ns_median(ram_bytes, options.fork_repeat);
      if (!fork_ns) return fork_ns.error();
      row->linux_fork_ns_median = *fork_ns;
      spdlog::info("clone bench: {} Linux fork median {} ns", cli::format_size(ram_bytes),
                   *fork_ns);
    }
    report.rows.push_back(*row);
  }
  return report;
}

}  // namespace vmfork::bench
