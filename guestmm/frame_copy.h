// Copying one 4 KiB frame. The protocol guarantees nobody writes the source
// during the copy (the copier's reference keeps its count above 1), so a
// plain memcpy is correct. ThreadSanitizer builds copy word by word with
// relaxed atomics instead: the race tests also run against mutants of the
// protocol (tests/mutation), and must see a torn copy as a wrong result
// rather than abort on it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/types.h"
#include "base/waiter.h"
#include "ept/test_point.h"

namespace vmfork {

inline void copy_bytes(std::byte* to, const std::byte* from, size_t bytes) {
#if defined(__SANITIZE_THREAD__)
  auto* target = reinterpret_cast<uint64_t*>(to);
  auto* source = reinterpret_cast<const uint64_t*>(from);
  for (size_t i = 0; i < bytes / sizeof(uint64_t); ++i) {
    __atomic_store_n(&target[i], __atomic_load_n(&source[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
  }
#else
  std::memcpy(to, from, bytes);
#endif
}

inline void copy_frame(std::byte* to, const std::byte* from) {
  copy_bytes(to, from, kPageSize);
}

// The copy of step 4 is the longest stretch of a fault; a vCPU acknowledges
// the other vCPUs' shootdowns between its quarters, so their faults do not
// wait for ours.
inline void copy_frame_polling(std::byte* to, const std::byte* from, Waiter& waiter) {
  constexpr size_t kQuarter = kPageSize / 4;
  for (size_t offset = 0; offset < kPageSize; offset += kQuarter) {
    if (offset != 0) waiter.poll();
    test_point(offset == 0 ? TestPoint::kBeforeFrameCopy : TestPoint::kDuringFrameCopy);
    copy_bytes(to + offset, from + offset, kQuarter);
  }
}

}  // namespace vmfork
