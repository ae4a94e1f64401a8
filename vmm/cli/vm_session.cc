#include "vmm/cli/vm_session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "vmm/cli/duration_arg.h"

namespace vmfork::cli {

namespace {

// The thread of a timed task: it waits out the delay (or the end of the
// session, which cancels it), then runs the task.
class TaskTimer {
 public:
  explicit TaskTimer(const TimedTask& task) : task_(task), thread_([this] { run(); }) {}
  ~TaskTimer() { (void)finish(); }
  TaskTimer(const TaskTimer&) = delete;
  TaskTimer& operator=(const TaskTimer&) = delete;

  // Cancels the task unless it started; then waits for it. Its result, or
  // none when it was cancelled.
  std::optional<Result<std::string>> finish() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (!result_ && task_.or_at_end) result_ = task_.run();
    return std::move(result_);
  }
  const TimedTask& task() const { return task_; }

 private:
  void run() {
    {
      std::unique_lock lock(mutex_);
      if (changed_.wait_for(lock, std::chrono::nanoseconds(task_.after_ns),
                            [this] { return cancelled_; })) {
        return;
      }
    }
    result_ = task_.run();
  }

  const TimedTask& task_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool cancelled_ = false;                     // guarded by mutex_
  std::optional<Result<std::string>> result_;  // the thread's, read after join
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
  std::vector<std::unique_ptr<TaskTimer>> timers;
  for (const TimedTask& task : options.tasks)
    timers.push_back(std::make_unique<TaskTimer>(task));
  int status = monitor.wait();
  signals.unwatch();

  bool task_failed = false;
  for (const std::unique_ptr<TaskTimer>& timer : timers) {
    std::optional<Result<std::string>> done = timer->finish();
    if (!done) {
      fmt::print(stderr, "vmfork: {}: every VM ended before it was due\n", timer->task().what);
      task_failed = true;
    } else if (!*done) {
      fmt::print(stderr, "vmfork: {}: {}\n", timer->task().what, done->error().message);
      task_failed = true;
    } else {
      fmt::print("{}\n", **done);
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
  if (status == 0 && task_failed) status = 1;
  return status;
}

TimedTask timed_snapshot(Monitor& monitor, std::string vm, std::filesystem::path dir,
                         uint64_t after_ns) {
  return {.what = "--snapshot-after",
          .after_ns = after_ns,
          .run = [&monitor, vm = std::move(vm), dir = std::move(dir)]() -> Result<std::string> {
            Result<SnapshotReport> taken = monitor.snapshot_vm(vm, dir);
            if (!taken)
              return make_error(taken.error().code, fmt::format("snapshot {}: {}", dir.string(),
                                                                taken.error().message));
            return fmt::format("snapshot {}: paused {:.1f} us, wrote {} page(s){} in {:.1f} ms",
                               taken->dir.string(), static_cast<double>(taken->pause_ns) / 1e3,
                               taken->pages, taken->diff ? " (diff)" : "",
                               static_cast<double>(taken->write_ns) / 1e6);
          }};
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
