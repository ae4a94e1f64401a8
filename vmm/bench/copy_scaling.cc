#include "vmm/bench/copy_scaling.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "base/types.h"
#include "base/waiter.h"
#include "vmm/clock.h"

namespace vmfork::bench {

PlainCopyBaseline::PlainCopyBaseline(uint64_t bytes) : source_(bytes), target_(bytes) {}

double PlainCopyBaseline::pages_per_sec(int threads) {
  std::memset(source_.data(), ++generation_, source_.size());
  const size_t half = source_.size() / kPageSize / 2;
  std::atomic<int> waiting{threads};
  std::vector<uint64_t> starts(static_cast<size_t>(threads));
  std::vector<uint64_t> ends(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      const size_t index = static_cast<size_t>(i);
      waiting.fetch_sub(1, std::memory_order_acq_rel);
      while (waiting.load(std::memory_order_acquire) > 0)
        cpu_relax();
      starts[index] = now_ns();
      const size_t first = index * half * kPageSize;
      for (size_t page = 0; page < half; ++page) {
        const size_t offset = first + page * kPageSize;
        std::memcpy(target_.data() + offset, source_.data() + offset, kPageSize);
      }
      ends[index] = now_ns();
    });
  }
  for (std::thread& worker : workers)
    worker.join();
  const uint64_t elapsed =
      *std::max_element(ends.begin(), ends.end()) - *std::min_element(starts.begin(), starts.end());
  return static_cast<double>(half) * threads * 1e9 /
         static_cast<double>(std::max<uint64_t>(elapsed, 1));
}

}  // namespace vmfork::bench
