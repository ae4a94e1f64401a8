// A latency histogram for /metrics: power-of-two buckets from 1 us to about
// 34 s, cumulative as Prometheus wants them. Not thread-safe: its owner
// locks.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vmfork::api {

class LatencyHistogram {
 public:
  // Bucket i holds values <= bound(i) ns: 1024 ns << i.
  static constexpr size_t kBuckets = 26;
  static constexpr uint64_t bound(size_t i) { return uint64_t{1024} << i; }

  void add(uint64_t ns) {
    ++count_;
    sum_ns_ += ns;
    size_t i = 0;
    while (i < kBuckets && ns > bound(i))
      ++i;
    if (i < kBuckets) ++buckets_[i];
  }
  uint64_t count() const { return count_; }
  uint64_t sum_ns() const { return sum_ns_; }
  // Values <= bound(i) (cumulative).
  uint64_t at_most(size_t i) const {
    uint64_t total = 0;
    for (size_t j = 0; j <= i; ++j)
      total += buckets_[j];
    return total;
  }

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
};

}  // namespace vmfork::api
