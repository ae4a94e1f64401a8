#include "vmm/cli/stop_signals.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <system_error>

namespace vmfork::cli {

const char* signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "a signal";
}

StopSignals::StopSignals() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, &previous_mask_);
}

StopSignals::~StopSignals() {
  unwatch();
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

bool StopSignals::watch(std::function<void(int)> stop) {
  stop_ = std::move(stop);
  try {
    thread_ = std::thread([this] { loop(); });
  } catch (const std::system_error&) {
    return false;
  }
  return true;
}

void StopSignals::unwatch() {
  if (!thread_.joinable()) return;
  unwatching_.store(true, std::memory_order_release);
  // Wakes the sigwait; loop() sees unwatching_ and leaves without stopping
  // anything.
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
}

void StopSignals::loop() {
  for (;;) {
    int signal = 0;
    if (sigwait(&signals_, &signal) != 0) continue;
    if (unwatching_.load(std::memory_order_acquire)) return;
    if (caught_.load(std::memory_order_relaxed) != 0) {
      // The stop is taking too long for the user: go now.
      fmt::print(stderr, "vmfork: {} again: exiting without waiting for the VMs\n",
                 signal_name(signal));
      std::fflush(stderr);
      _exit(128 + signal);
    }
    caught_.store(signal, std::memory_order_release);
    stop_(signal);
  }
}

}  // namespace vmfork::cli
