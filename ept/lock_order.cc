#include "ept/lock_order.h"

#ifndef NDEBUG
#include <array>
#include <cstdio>
#include <cstdlib>

namespace vmfork::lock_order {

namespace {
struct HeldLocks {
  std::array<LockRank, 8> ranks{};
  int count = 0;
};
thread_local HeldLocks held;

[[noreturn]] void violation(const char* what, LockRank rank) {
  std::fprintf(stderr, "lock order violation: %s rank %d (holding %d locks)\n", what,
               static_cast<int>(rank), held.count);
  std::abort();
}
}  // namespace

void acquired(LockRank rank) {
  if (held.count > 0 && held.ranks[static_cast<size_t>(held.count - 1)] >= rank) {
    violation("acquiring", rank);
  }
  if (held.count == static_cast<int>(held.ranks.size())) violation("too deep at", rank);
  held.ranks[static_cast<size_t>(held.count++)] = rank;
}

void released(LockRank rank) {
  // Locks are released in reverse order of acquisition.
  if (held.count == 0 || held.ranks[static_cast<size_t>(held.count - 1)] != rank) {
    violation("releasing out of order", rank);
  }
  --held.count;
}

}  // namespace vmfork::lock_order
#endif
