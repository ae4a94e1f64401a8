// Copying one 4 KiB frame. The protocol guarantees nobody writes the source
// during the copy (the copier's reference keeps its count above 1), so a
// plain memcpy is correct. ThreadSanitizer builds copy word by word with
// relaxed atomics instead: the race tests run deliberately broken variants
// of the protocol, and must see the torn copy as a wrong result rather
// than abort on it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ept/types.h"

namespace vmfork {

inline void copy_frame(std::byte* to, const std::byte* from) {
#if defined(__SANITIZE_THREAD__)
  auto* target = reinterpret_cast<uint64_t*>(to);
  auto* source = reinterpret_cast<const uint64_t*>(from);
  for (size_t i = 0; i < kPageSize / sizeof(uint64_t); ++i) {
    __atomic_store_n(&target[i], __atomic_load_n(&source[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
  }
#else
  std::memcpy(to, from, kPageSize);
#endif
}

}  // namespace vmfork
