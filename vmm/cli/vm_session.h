// What `vmfork run` and `vmfork restore` do once their first VMs are
// launched: SIGINT/SIGTERM stop every VM, a snapshot may be taken from
// outside after a delay, and when every VM has ended the latencies,
// checksums and tally are reported. Returns the process exit status.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "ept/result.h"
#include "vmm/cli/stop_signals.h"
#include "vmm/vm/monitor.h"

namespace vmfork::cli {

// `vmfork ... --snapshot DIR --snapshot-after DURATION`: snapshot VM `vm`
// into `dir` DURATION after the start, from outside.
struct TimedSnapshot {
  std::string vm;
  std::filesystem::path dir;
  uint64_t after_ns = 0;
};

struct SessionOptions {
  // What the first-instruction latencies are of ("fork", "restore").
  std::string latency_of = "fork";
  std::optional<TimedSnapshot> snapshot;
};

// A failed timed snapshot makes the exit status 1 when the VMs' is 0 (the
// error is on stderr).
int run_session(Monitor& monitor, StopSignals& signals, const SessionOptions& options);

// Runs a command's body: its error, or a thread of the monitor's own that
// the host refused, is printed on stderr and gives exit status 1.
int run_reporting_errors(const std::function<Result<int>()>& body);

// Adds --snapshot DIR (described by `what`) and --snapshot-after DURATION
// (nanoseconds; needs --snapshot) to `command`.
void add_snapshot_options(CLI::App& command, std::string& dir, uint64_t& after_ns,
                          const std::string& what);

}  // namespace vmfork::cli
