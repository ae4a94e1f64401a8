#include "guestmm/per_thread.h"

#include <atomic>

namespace vmfork {

size_t this_thread_shard() {
  static std::atomic<size_t> next{0};
  thread_local const size_t shard = next.fetch_add(1, std::memory_order_relaxed);
  return shard;
}

}  // namespace vmfork
