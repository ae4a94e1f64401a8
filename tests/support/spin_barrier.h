// A spinning start barrier for concurrency tests: releases every party at
// once (so that each thread takes its fault together), yielding while it
// waits, since these hosts have fewer cores than some tests have threads.
#pragma once

#include <atomic>
#include <thread>

namespace vmfork::testing {

class SpinBarrier {
 public:
  explicit SpinBarrier(int parties) : parties_(parties) {}
  void arrive_and_wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == parties_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    while (generation_.load(std::memory_order_acquire) == generation)
      std::this_thread::yield();
  }

 private:
  const int parties_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

}  // namespace vmfork::testing
