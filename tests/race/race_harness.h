// Shared pieces of the race tests: guest word access through a vCPU's
// translation cache, the test point hook (ept/test_point.h) and the names
// of the vCPU threads it acts on, bounded waits, and the start barrier
// (tests/support/spin_barrier.h).
//
// A race test drives the production fault path. Its hook only holds a
// thread at a test point until another thread has done something (or, when
// the correct protocol forbids that something, until a generous bound
// passes). Checks are orderings (a flag set after a write must be seen with
// the write), never durations.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "base/waiter.h"
#include "ept/test_point.h"
#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/vcpu_memory.h"
#include "tests/support/spin_barrier.h"

namespace vmfork::testing {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr int kSanitizerSlowdown = 4;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

// How long a thread waits for something the correct protocol forbids
// before it goes on: long enough for a busy 2-core host to run the other
// thread, so that a broken protocol is caught on every attempt.
inline constexpr std::chrono::milliseconds kForbiddenWait{200 * kSanitizerSlowdown};
// How long a thread waits for something the protocol allows: only a bound
// on a hang, never reached when the code is right.
inline constexpr std::chrono::seconds kAllowedWait{30};

// The vCPU the current thread stands for ('A', 'B', ...); 0 on the test's
// own thread. Hooks act only on the threads they name.
inline thread_local char vcpu_name = 0;

// Installs `hook` on every test point for its lifetime. Make it before the
// test's threads start and destroy it after they joined.
class ScopedTestPointHook {
 public:
  explicit ScopedTestPointHook(std::function<void(TestPoint)> hook) : hook_(std::move(hook)) {
    current_ = &hook_;
    test_point_hook.store(&dispatch, std::memory_order_release);
  }
  ~ScopedTestPointHook() {
    test_point_hook.store(nullptr, std::memory_order_release);
    current_ = nullptr;
  }
  ScopedTestPointHook(const ScopedTestPointHook&) = delete;
  ScopedTestPointHook& operator=(const ScopedTestPointHook&) = delete;

 private:
  static void dispatch(TestPoint point) { (*current_)(point); }
  static inline std::function<void(TestPoint)>* current_ = nullptr;
  std::function<void(TestPoint)> hook_;
};

// Where every race starts: a guest memory (a 16 MiB pool, frames populated
// on demand) and one 4 MiB space in it, "origin", that the test fills and
// clones.
struct RaceMemory {
  Result<std::unique_ptr<GuestMemory>> memory;
  Result<std::unique_ptr<AddressSpace>> origin;
};

inline RaceMemory make_race_memory() {
  Result<std::unique_ptr<GuestMemory>> memory =
      GuestMemory::create({.pool_bytes = 16 << 20, .populate = Populate::kOnDemand});
  EXPECT_TRUE(memory.ok()) << memory.error().message;
  Result<std::unique_ptr<AddressSpace>> origin = (*memory)->create_space("origin", 4 << 20);
  EXPECT_TRUE(origin.ok()) << origin.error().message;
  return {std::move(memory), std::move(origin)};
}

// A guest word store/load through the vCPU's translation cache, as the
// soft engine performs them (relaxed atomics: guest accesses may race).
inline void guest_store(VcpuMemory& vcpu, Gpa gpa, uint64_t value) {
  Result<std::byte*> host = vcpu.translate(gpa, Access::kWrite);
  ASSERT_TRUE(host.ok()) << host.error().message;
  __atomic_store_n(reinterpret_cast<uint64_t*>(*host), value, __ATOMIC_RELAXED);
}

inline uint64_t guest_load(VcpuMemory& vcpu, Gpa gpa) {
  Result<std::byte*> host = vcpu.translate(gpa, Access::kRead);
  EXPECT_TRUE(host.ok());
  if (!host.ok()) return ~uint64_t{0};
  return __atomic_load_n(reinterpret_cast<const uint64_t*>(*host), __ATOMIC_RELAXED);
}

// Waits until `done()` or `timeout` passes; returns done(). With `vcpu`,
// services its shootdowns and passes quiescent points meanwhile, as a vCPU
// does in every basic block; without, it holds the thread as it is.
template <class Done>
bool wait_until(Done&& done, std::chrono::microseconds timeout, VcpuMemory* vcpu = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (vcpu != nullptr) vcpu->check();
    std::this_thread::yield();  // the thread we wait for may need this core
  }
  return true;
}

inline bool wait_for_flag(const std::atomic<bool>& flag, std::chrono::microseconds timeout,
                          VcpuMemory* vcpu = nullptr) {
  return wait_until([&flag] { return flag.load(std::memory_order_acquire); }, timeout, vcpu);
}

}  // namespace vmfork::testing
