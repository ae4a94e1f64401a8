// Shared pieces of the race tests: guest word access through a vCPU's
// translation cache, test-scale constants, and the start barrier
// (tests/support/spin_barrier.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <gtest/gtest.h>

#include "ept/waiter.h"
#include "guestmm/vcpu_memory.h"
#include "tests/support/spin_barrier.h"

namespace vmfork::testing {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr int kSanitizerSlowdown = 4;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

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

// Waits (servicing shootdowns) until `flag` is set or `timeout` passes.
inline bool wait_for_flag(const std::atomic<bool>& flag, std::chrono::microseconds timeout,
                          VcpuMemory* vcpu = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (vcpu != nullptr) vcpu->check();
    std::this_thread::yield();  // the thread we wait for may need this core
  }
  return true;
}

}  // namespace vmfork::testing
