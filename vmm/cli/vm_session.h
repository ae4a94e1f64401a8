// What `vmfork run` and `vmfork restore` do once their first VMs are
// launched: SIGINT/SIGTERM stop every VM, timed tasks run (a snapshot from
// outside, recording a working set), and when every VM has ended the
// latencies, checksums and tally are reported. Returns the process exit
// status.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/result.h"
#include "vmm/cli/stop_signals.h"
#include "vmm/vm/monitor.h"

namespace vmfork::cli {

// Runs `run` on a thread of its own `after_ns` after the session starts,
// or, if every VM ends first, then (`or_at_end`) or never (an error). Its
// result is printed (a line on stdout) or reported (stderr, and exit status
// 1 when the VMs' is 0).
struct TimedTask {
  std::string what;  // "--snapshot-after", for the messages
  uint64_t after_ns = 0;
  bool or_at_end = false;
  std::function<Result<std::string>()> run;
};

struct SessionOptions {
  // What the first-instruction latencies are of ("fork", "restore").
  std::string latency_of = "fork";
  std::vector<TimedTask> tasks;
};

int run_session(Monitor& monitor, StopSignals& signals, const SessionOptions& options);

// `--snapshot DIR --snapshot-after DURATION`: snapshot VM `vm` from outside.
TimedTask timed_snapshot(Monitor& monitor, std::string vm, std::filesystem::path dir,
                         uint64_t after_ns);

// Runs a command's body: its error, or a thread of the monitor's own that
// the host refused, is printed on stderr and gives exit status 1.
int run_reporting_errors(const std::function<Result<int>()>& body);

// Adds --snapshot DIR (described by `what`) and --snapshot-after DURATION
// (nanoseconds; needs --snapshot) to `command`.
void add_snapshot_options(CLI::App& command, std::string& dir, uint64_t& after_ns,
                          const std::string& what);

}  // namespace vmfork::cli
