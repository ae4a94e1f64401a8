// One guest load or store of 1, 2, 4 or 8 bytes as exactly one host access of that width.
//
// x86 makes such an access single-copy atomic when it stays within a cache line (SDM vol. 3A,
// 9.1.1), and guests rely on it: a spinlock is released with a plain `mov`. memcpy promises
// nothing of the kind. glibc's copies 4 bytes as two overlapping 4-byte stores. A second store of
// an unlock that lands after another vCPU's `xchg` has taken the lock releases it under that vCPU,
// and two vCPUs then run the critical section together (seen as lost counter updates in
// guests/spinlock_counter.c, far more often when vCPU threads outnumber host cores).
//
// Aligned accesses are relaxed atomics, which are one access by definition and which
// ThreadSanitizer understands: a guest's races are its own business, not the monitor's. A
// misaligned access is one volatile access through a byte-aligned type: GCC emits a single `mov`
// for it, and x86 performs it atomically within a cache line, as the guest's own `mov` would.
// ThreadSanitizer builds copy misaligned accesses byte by byte with relaxed atomics, because TSan
// treats volatile as plain.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmfork {

namespace guest_word_detail {

template <class T>
T load(const std::byte* p) {
  if (reinterpret_cast<uintptr_t>(p) % sizeof(T) == 0) {
    return __atomic_load_n(reinterpret_cast<const T*>(p), __ATOMIC_RELAXED);
  }
#if defined(__SANITIZE_THREAD__)
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    const auto byte = __atomic_load_n(reinterpret_cast<const uint8_t*>(p) + i, __ATOMIC_RELAXED);
    value = static_cast<T>(value | static_cast<T>(T{byte} << (8 * i)));
  }
  return value;
#else
  using Unaligned [[gnu::aligned(1), gnu::may_alias]] = T;
  return *reinterpret_cast<const volatile Unaligned*>(p);
#endif
}

template <class T>
void store(std::byte* p, T value) {
  if (reinterpret_cast<uintptr_t>(p) % sizeof(T) == 0) {
    __atomic_store_n(reinterpret_cast<T*>(p), value, __ATOMIC_RELAXED);
    return;
  }
#if defined(__SANITIZE_THREAD__)
  for (size_t i = 0; i < sizeof(T); ++i) {
    __atomic_store_n(reinterpret_cast<uint8_t*>(p) + i, static_cast<uint8_t>(value >> (8 * i)),
                     __ATOMIC_RELAXED);
  }
#else
  using Unaligned [[gnu::aligned(1), gnu::may_alias]] = T;
  *reinterpret_cast<volatile Unaligned*>(p) = value;
#endif
}

}  // namespace guest_word_detail

// Loads `size` (1, 2, 4 or 8) little-endian bytes at `p`, zero-extended.
inline uint64_t load_guest_word(const std::byte* p, unsigned size) {
  switch (size) {
    case 1:
      return guest_word_detail::load<uint8_t>(p);
    case 2:
      return guest_word_detail::load<uint16_t>(p);
    case 4:
      return guest_word_detail::load<uint32_t>(p);
    default:
      return guest_word_detail::load<uint64_t>(p);
  }
}

// Stores the low `size` (1, 2, 4 or 8) bytes of `value` at `p`, little-endian.
inline void store_guest_word(std::byte* p, unsigned size, uint64_t value) {
  switch (size) {
    case 1:
      guest_word_detail::store(p, static_cast<uint8_t>(value));
      return;
    case 2:
      guest_word_detail::store(p, static_cast<uint16_t>(value));
      return;
    case 4:
      guest_word_detail::store(p, static_cast<uint32_t>(value));
      return;
    default:
      guest_word_detail::store(p, value);
      return;
  }
}

}  // namespace vmfork
