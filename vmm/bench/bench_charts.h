// The pictures of `--plot`: the charts of the fork and restore benches,
// drawn from the same report that the table and --json print.
#pragma once

#include "vmm/bench/fork_bench.h"
#include "vmm/bench/restore_bench.h"
#include "vmm/bench/svg_plot.h"

namespace vmfork::bench {

// Fork latency (median, request to each clone's first instruction) against
// guest RAM, one line per clone count; Linux fork() of a process with the
// same RAM touched beside it (sizes up to --fork-max), and for an engine
// other than soft the soft engine's lines, dashed.
Chart fork_chart(const ForkBenchReport& report);

// Restore latency (median, snapshot opened to each clone's first
// instruction) against guest RAM: one colour per clone count, one line
// style per mode (lazy solid, eager dashed, prefetch dotted).
Chart restore_chart(const RestoreBenchReport& report);

}  // namespace vmfork::bench
