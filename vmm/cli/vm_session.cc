#include "vmm/cli/vm_session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "vmm/cli/duration_arg.h"

namespace vmfork::cli {

namespace {

// The thread of a timed snapshot: it waits out the delay (or the end of
// the session, which cancels it), then snapshots the VM.
class SnapshotTimer {
 public:
  SnapshotTimer(Monitor& monitor, TimedSnapshot snapshot)
      : monitor_(monitor), snapshot_(std::move(snapshot)), thread_([this] { run(); }) {}
  ~SnapshotTimer() { (void)finish(); }
  SnapshotTimer(const SnapshotTimer&) = delete;
  SnapshotTimer& operator=(const SnapshotTimer&) = delete;

  // Cancels the snapshot unless it started; then waits for it. Its result,
  // or none when it was cancelled.
  std::optional<Result<SnapshotReport>> finish() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
    return std::move(result_);
  }

 private:
  void run() {
    {
      std::unique_lock lock(mutex_);
      if (changed_.wait_for(lock, std::chrono::nanoseconds(snapshot_.after_ns),
                            [this] { return cancelled_; })) {
        return;
      }
    }
    result_ = monitor_.snapshot_vm(snapshot_.vm, snapshot_.dir);
  }

  Monitor& monitor_;
  const TimedSnapshot snapshot_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool cancelled_ = false;                        // guarded by mutex_
  std::optional<Result<SnapshotReport>> result_;  // the thread's, read after join
  std::thread thread_;
};

void report_latencies(const Monitor& monitor, const std::string& latency_of) {
  std::vector<ForkLatency> latencies = monitor.fork_latencies();
  if (latencies.empty()) return;
  std::sort(latencies.begin(), latencies.end(),
            [](const ForkLatency& a, const ForkLatency& b) { return a.ns < b.ns; });
  spdlog::info("{} latency over {} clone(s): median {:.1f} us, max {:.1f} us", latency_of,
               latencies.size(), static_cast<double>(latencies[latencies.size() / 2].ns) / 1000,
               static_cast<double>(latencies.back().ns) / 1000);
}

}  // namespace

int run_session(Monitor& monitor, StopSignals& signals, const SessionOptions& options) {
  if (!signals.watch([&monitor](int signal) {
        fmt::print(stderr, "vmfork: {}: stopping every VM\n", signal_name(signal));
        std::fflush(stderr);
        monitor.stop_all(static_cast<uint32_t>(128 + signal));
      })) {
    spdlog::warn("no thread to take SIGINT and SIGTERM: they stay blocked until the VMs end");
  }
  std::optional<SnapshotTimer> timer;
  if (options.snapshot) timer.emplace(monitor, *options.snapshot);
  int status = monitor.wait();
  signals.unwatch();

  bool snapshot_failed = false;
  if (timer) {
    std::optional<Result<SnapshotReport>> taken = timer->finish();
    if (!taken) {
      fmt::print(stderr, "vmfork: --snapshot-after: every VM ended before the snapshot was due\n");
      snapshot_failed = true;
    } else if (!*taken) {
      fmt::print(stderr, "vmfork: snapshot {}: {}\n", options.snapshot->dir.string(),
                 taken->error().message);
      snapshot_failed = true;
    } else {
      fmt::print("snapshot {}: paused {:.1f} us, wrote {} page(s){} in {:.1f} ms\n",
                 (*taken)->dir.string(), static_cast<double>((*taken)->pause_ns) / 1e3,
                 (*taken)->pages, (*taken)->diff ? " (diff)" : "",
                 static_cast<double>((*taken)->write_ns) / 1e6);
    }
    std::fflush(stdout);
    std::fflush(stderr);
  }

  report_latencies(monitor, options.latency_of);
  for (const MemoryChecksum& checksum : monitor.memory_checksums())
    fmt::print("memory-checksum {} {:016x}\n", checksum.vm, checksum.checksum);
  const Monitor::Tally tally = monitor.tally();
  if (const int signal = signals.caught(); signal != 0) {
    // Always shown: the user asked for the stop and sees what it stopped.
    fmt::print(stderr, "vmfork: stopped by {}: {} VM(s) ran, {} ended with a non-zero status\n",
               signal_name(signal), tally.launched, tally.failed);
    std::fflush(stderr);
    return 128 + signal;
  }
  spdlog::info("{} VM(s) ran, {} ended with a non-zero status", tally.launched, tally.failed);
  if (const std::optional<Monitor::Failure> failure = monitor.first_failure();
      failure && static_cast<uint32_t>(status) != failure->status) {
    // An exit status keeps 8 bits: 256 must not read as success.
    fmt::print(stderr,
               "vmfork: {} ended with status {} ({:#x}), which an exit status cannot "
               "hold: exiting with {}\n",
               failure->vm, failure->status, failure->status, status);
    std::fflush(stderr);
  }
  if (status == 0 && snapshot_failed) status = 1;
  return status;
}

int run_reporting_errors(const std::function<Result<int>()>& body) {
  Result<int> status = make_error(ErrorCode::kInternal, "not run");
  try {
    status = body();
  } catch (const std::system_error& error) {
    // A thread of the monitor's own (the pool's populator, the kvm fault
    // service) the host refused at boot; vCPU threads are refused as
    // errors.
    status = make_error(ErrorCode::kSystem, fmt::format("cannot start: {}", error.what()));
  }
  if (!status) {
    fmt::print(stderr, "vmfork: {}\n", status.error().message);
    return 1;
  }
  return *status;
}

void add_snapshot_options(CLI::App& command, std::string& dir, uint64_t& after_ns,
                          const std::string& what) {
  CLI::Option* snapshot = command.add_option("--snapshot", dir, what)->type_name("DIR");
  command
      .add_option("--snapshot-after", after_ns,
                  "Snapshot the VM into --snapshot DIR from outside this long after it starts, "
                  "whatever it is doing (500us, 250ms, 2s): it pauses only while its state is "
                  "captured; the files are written while it runs on")
      ->transform(duration_transform())
      ->type_name("DURATION")
      ->needs(snapshot);
}

}  // namespace vmfork::cli
