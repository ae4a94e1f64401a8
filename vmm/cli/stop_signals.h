// SIGINT and SIGTERM during `vmfork run`: the VMs are stopped cleanly (each
// prints what is left of its console line, the monitor its summary) instead
// of the process dying with their output. A second signal exits at once.
//
// The signals are blocked in the thread that creates a StopSignals, and so
// in every thread it creates afterwards (vCPUs, the pool's populator); one
// thread of ours takes them with sigwait.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <functional>
#include <thread>

namespace vmfork::cli {

// "SIGINT", "SIGTERM".
const char* signal_name(int signal);

class StopSignals {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread: create it before any
  // other thread.
  StopSignals();
  // Stops watching, then unblocks (a signal still pending is delivered).
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // From now until unwatch(), the first signal runs `stop(signal)` on a
  // thread of ours. False when that thread cannot be created (the signals
  // then stay blocked until the destructor).
  bool watch(std::function<void(int)> stop);
  // After this, `stop` never runs.
  void unwatch();
  // The signal that ran `stop`, or 0.
  int caught() const { return caught_.load(std::memory_order_acquire); }

 private:
  void loop();

  sigset_t signals_{};
  sigset_t previous_mask_{};
  std::function<void(int)> stop_;
  std::atomic<bool> unwatching_{false};
  std::atomic<int> caught_{0};
  std::thread thread_;
};

}  // namespace vmfork::cli
