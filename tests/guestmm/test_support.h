// Shared pieces of the guestmm tests: Result checks with the library's error
// message, byte patterns, reclamation to quiescence, the sanitizer scale
// factor, and the start barrier (tests/support/spin_barrier.h).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "tests/support/spin_barrier.h"

namespace vmfork::testing {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr int kSanitizerSlowdown = 8;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;

template <class T>
::testing::AssertionResult IsOk(const Result<T>& result) {
  if (result.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << to_string(result.error().code) << ": " << result.error().message;
}

// Where a helper was called from. std::source_location would do, but the
// clang that clang-tidy runs (14) cannot compile it with libstdc++ 12.
struct CallSite {
  const char* file = __builtin_FILE();
  int line = __builtin_LINE();
};

[[noreturn]] inline void fail_at(const CallSite& where, const Error& error) {
  std::string message(where.file);
  message.append(":").append(std::to_string(where.line)).append(": ");
  message.append(to_string(error.code)).append(": ").append(error.message);
  throw std::runtime_error(message);
}

// The value of a result that must be ok. Throws otherwise, so the test stops
// with the library's message (gtest reports the exception as a failure).
template <class T>
T unwrap(Result<T> result, CallSite where = {}) {
  if (!result.ok()) fail_at(where, result.error());
  return std::move(result).value();
}

inline void unwrap(Result<void> result, CallSite where = {}) {
  if (!result.ok()) fail_at(where, result.error());
}

// A small pool, populated by the host on first touch (fast, and cheap under
// the sanitizers).
inline std::unique_ptr<GuestMemory> make_memory(uint64_t pool_bytes = 64 * kMiB) {
  return unwrap(GuestMemory::create({.pool_bytes = pool_bytes, .populate = Populate::kOnDemand}));
}

// `size` bytes that differ with `seed` and with the position.
inline std::vector<std::byte> pattern(size_t size, uint64_t seed) {
  std::vector<std::byte> bytes(size);
  uint64_t state = seed * 0x9e37'79b9'7f4a'7c15 + 1;
  for (std::byte& b : bytes) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    b = static_cast<std::byte>(state & 0xff);
  }
  return bytes;
}

inline void write_bytes(AddressSpace& space, Gpa gpa, std::span<const std::byte> data,
                        CallSite where = {}) {
  unwrap(space.write(gpa, data), where);
}

inline std::vector<std::byte> read_bytes(const AddressSpace& space, Gpa gpa, size_t size,
                                         CallSite where = {}) {
  std::vector<std::byte> out(size);
  unwrap(space.read(gpa, out), where);
  return out;
}

inline void write_u64(AddressSpace& space, Gpa gpa, uint64_t value) {
  write_bytes(space, gpa, std::as_bytes(std::span(&value, 1)));
}

inline uint64_t read_u64(const AddressSpace& space, Gpa gpa) {
  uint64_t value = 0;
  unwrap(space.read(gpa, std::as_writable_bytes(std::span(&value, 1))));
  return value;
}

// Runs reclamation until nothing waits (no participant may be online and
// behind). Returns true if every retired frame was released.
inline bool reclaim_all(GuestMemory& memory) {
  for (int i = 0; i < 8 && memory.reclaimer().pending() > 0; ++i)
    memory.reclaimer().collect();
  return memory.reclaimer().pending() == 0;
}

inline uint64_t frames_in_use(const FrameCounts& counts) {
  return counts.data + counts.table;
}

}  // namespace vmfork::testing
