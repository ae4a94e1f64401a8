// Statistics written by many vCPU threads at once. One shared atomic would
// move its cache line between cores on every fault (measured: it costs the
// two-thread COW figure a large part of its scaling), so each thread adds
// to its own cache-line-sized shard and a reader sums the shards.
#pragma once

#include <array>
#include <cstddef>

namespace vmfork {

// A small index for the calling thread, fixed for its lifetime; threads
// created one after another get different ones.
size_t this_thread_shard();

template <class Shard>
class PerThread {
 public:
  static constexpr size_t kShards = 16;

  Shard& local() { return shards_[this_thread_shard() % kShards].shard; }

  template <class Visit>
  void for_each(Visit visit) const {
    for (const Padded& padded : shards_)
      visit(padded.shard);
  }

 private:
  struct alignas(64) Padded {
    Shard shard;
  };
  std::array<Padded, kShards> shards_{};
};

}  // namespace vmfork
