// read_chunk from many threads at once (the page cache's first touches of
// several vCPUs) reads the right bytes: pread only, no shared cursor.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/snapshot/snapshot_test_support.h"

namespace vmfork::testing {
namespace {

TEST(SnapshotConcurrentRead, ThreadsReadingTheSameChainAllGetTheRightPages) {
  TempDir tmp;
  // A parent with every third page, a child overriding every fifth: chunks
  // read from one file or from both.
  Pages parent;
  Pages child;
  for (uint64_t gfn = 0; gfn < 1024; ++gfn) {
    if (gfn % 3 == 0) parent[gfn] = page_pattern(gfn);
    if (gfn % 5 == 0) child[gfn] = page_pattern(gfn + 100'000);
  }
  write(tmp / "parent", parent);
  SnapshotState state = sample_state();
  state.parent = tmp / "parent";
  write(tmp / "child", child, sample_config(), state);
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "child"));

  constexpr int kThreads = 4;
  const int rounds = 20 / kSanitizerSlowdown + 1;
  SpinBarrier start(kThreads);
  std::atomic<uint64_t> wrong{0};
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int round = 0; round < rounds; ++round) {
        // Each thread walks the chunks in its own order, so they meet.
        for (uint64_t i = 0; i < 64; ++i) {
          const uint64_t chunk = (i * 13 + static_cast<uint64_t>(t) * 7) % 64;
          const auto pages = read_chunk(*opened.pages, chunk);
          if (!pages.ok()) {
            errors.fetch_add(1);
            continue;
          }
          for (uint64_t p = 0; p < kChunkPages; ++p) {
            const uint64_t gfn = chunk * kChunkPages + p;
            const std::vector<std::byte>* want = nullptr;
            if (const auto c = child.find(gfn); c != child.end()) {
              want = &c->second;
            } else if (const auto a = parent.find(gfn); a != parent.end()) {
              want = &a->second;
            }
            if (want != nullptr ? pages.value()[p] != *want : !pages.value()[p].empty()) {
              wrong.fetch_add(1);
            }
          }
        }
      }
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_EQ(wrong.load(), 0u);
}

}  // namespace
}  // namespace vmfork::testing
