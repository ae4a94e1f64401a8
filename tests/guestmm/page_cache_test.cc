// Lazy restore (DESIGN section 7): spaces restored from a PageCache read
// their source one chunk at a time on first touch, share every frame they
// have not written, and cost pages touched + N x pages written + tables.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "guestmm/page_cache.h"
#include "guestmm/page_source.h"
#include "guestmm/snapshot.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 64 * kMiB;

// Pages in memory; page gfn of a chunk with data holds the byte pattern of
// seed gfn. Counts the chunks it reads; fails the chunks it is told to.
class FakeSource final : public PageSource {
 public:
  void add(uint64_t gfn) { masks_[gfn / kChunkPages] |= uint16_t(1u << (gfn % kChunkPages)); }
  uint64_t ram_bytes() const override { return kRam; }
  uint16_t pages_with_data(uint64_t chunk) const override {
    auto it = masks_.find(chunk);
    return it == masks_.end() ? 0 : it->second;
  }
  Result<void> read_chunk(uint64_t chunk,
                          std::span<std::byte* const, kChunkPages> pages) const override {
    reads.fetch_add(1);
    if (chunk == failing_chunk) {
      return make_error(ErrorCode::kSystem, "fake: chunk " + std::to_string(chunk) + " unreadable");
    }
    for (uint64_t i = 0; i < kChunkPages; ++i) {
      if (pages[i] == nullptr) continue;
      std::vector<std::byte> data = pattern(kPageSize, chunk * kChunkPages + i);
      std::memcpy(pages[i], data.data(), kPageSize);
    }
    return Ok{};
  }
  mutable std::atomic<uint64_t> reads{0};
  uint64_t failing_chunk = ~uint64_t{0};

 private:
  std::map<uint64_t, uint16_t> masks_;
};

struct Restore {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::shared_ptr<FakeSource> source = std::make_shared<FakeSource>();
  std::shared_ptr<PageCache> cache;

  std::shared_ptr<PageCache>& make_cache() {
    cache = unwrap(PageCache::create(*memory, source, "fake"));
    return cache;
  }
  std::unique_ptr<AddressSpace> space(const std::string& name) {
    return unwrap(memory->create_space(name, kRam, cache));
  }
};

std::vector<std::byte> page_bytes(const AddressSpace& space, uint64_t gfn) {
  return read_bytes(space, Gfn(gfn).gpa(), kPageSize);
}

TEST(PageCache, RestoringReadsNothingUntilFirstTouch) {
  Restore r;
  for (uint64_t gfn = 256; gfn < 512; ++gfn)
    r.source->add(gfn);
  r.make_cache();
  std::vector<std::unique_ptr<AddressSpace>> spaces;
  for (int i = 0; i < 8; ++i)
    spaces.push_back(r.space("clone" + std::to_string(i)));
  EXPECT_EQ(r.source->reads.load(), 0u);
  EXPECT_EQ(r.memory->frame_counts().data, 0u);
}

TEST(PageCache, ARestoredSpaceReadsTheSourceAndZeroElsewhere) {
  Restore r;
  r.source->add(300);
  r.source->add(301);
  r.make_cache();
  std::unique_ptr<AddressSpace> space = r.space("clone");
  EXPECT_EQ(page_bytes(*space, 300), pattern(kPageSize, 300));
  EXPECT_EQ(page_bytes(*space, 301), pattern(kPageSize, 301));
  EXPECT_EQ(page_bytes(*space, 302), std::vector<std::byte>(kPageSize));  // same chunk, no data
  EXPECT_EQ(page_bytes(*space, 5000), std::vector<std::byte>(kPageSize));
  EXPECT_EQ(r.source->reads.load(), 1u);  // one chunk; chunks without data are never read
}

TEST(PageCache, AFaultMapsTheSharedFrameForReadsAndACopyForWrites) {
  Restore r;
  r.source->add(300);
  r.source->add(301);
  r.make_cache();
  std::unique_ptr<AddressSpace> a = r.space("a");
  std::unique_ptr<AddressSpace> b = r.space("b");
  unwrap(a->handle_fault(Gfn(300).gpa(), Access::kRead, HostWaiter::instance()));
  unwrap(b->handle_fault(Gfn(300).gpa(), Access::kRead, HostWaiter::instance()));
  write_u64(*a, Gfn(301).gpa(), 0xa);  // first touch by a write: a copy
  write_u64(*b, Gfn(300).gpa(), 0xb);  // a write to the shared frame: COW
  EXPECT_EQ(read_u64(*a, Gfn(301).gpa()), 0xau);
  EXPECT_EQ(read_u64(*b, Gfn(300).gpa()), 0xbu);
  // What the other wrote is not seen; the source's pages are unchanged.
  EXPECT_EQ(page_bytes(*a, 300), pattern(kPageSize, 300));
  EXPECT_EQ(page_bytes(*b, 301), pattern(kPageSize, 301));
  EXPECT_EQ(a->counters().restored, 2u);
  // 300 by its fault; read_bytes of 301 reads the cache without mapping it.
  EXPECT_EQ(b->counters().restored, 1u);
  EXPECT_EQ(b->counters().copies, 1u);
}

TEST(PageCache, NClonesCostPagesTouchedPlusWhatEachWrote) {
  constexpr uint64_t kClones = 8;
  constexpr uint64_t kTouched = 64;  // four chunks, every page with data
  constexpr uint64_t kWritten = 5;
  Restore r;
  for (uint64_t gfn = 512; gfn < 512 + kTouched; ++gfn)
    r.source->add(gfn);
  r.make_cache();
  std::vector<std::unique_ptr<AddressSpace>> clones;
  for (uint64_t k = 0; k < kClones; ++k) {
    clones.push_back(r.space("clone" + std::to_string(k)));
    for (uint64_t gfn = 512; gfn < 512 + kTouched; ++gfn) {
      unwrap(clones.back()->handle_fault(Gfn(gfn).gpa(), Access::kRead, HostWaiter::instance()));
    }
    for (uint64_t i = 0; i < kWritten; ++i)
      write_u64(*clones.back(), Gfn(512 + i * 7).gpa(), k);
  }
  EXPECT_EQ(r.source->reads.load(), kTouched / PageSource::kChunkPages);
  EXPECT_EQ(r.cache->frames(), kTouched);
  const FrameCounts counts = r.memory->frame_counts();
  EXPECT_EQ(counts.data, kTouched + kClones * kWritten);
  // Per clone: its root and the three tables down to the pages' one table.
  EXPECT_EQ(counts.table, kClones * 4);
  // Every reference accounted for: one per present entry, one per root, one
  // per frame the cache holds.
  EXPECT_TRUE(IsOk(r.memory->verify_references()));
  for (uint64_t k = 0; k < kClones; ++k) {
    const SpaceAccounting own = clones[k]->account();
    EXPECT_EQ(own.data_exclusive, kWritten);
    EXPECT_EQ(own.data_shared, kTouched - kWritten);
  }
}

TEST(PageCache, EveryFrameGoesBackWhenTheLastUserIsGone) {
  Restore r;
  for (uint64_t gfn = 256; gfn < 300; ++gfn)
    r.source->add(gfn);
  r.make_cache();
  {
    std::unique_ptr<AddressSpace> space = r.space("clone");
    for (uint64_t gfn = 256; gfn < 300; ++gfn)
      write_u64(*space, Gfn(gfn).gpa(), gfn);
    std::unique_ptr<MemorySnapshot> snapshot = unwrap(space->snapshot("snap"));
    std::unique_ptr<AddressSpace> child = unwrap(snapshot->spawn("child"));
    r.cache.reset();  // the spaces and the snapshot keep it
    EXPECT_EQ(read_u64(*child, Gfn(299).gpa()), 299u);
    EXPECT_EQ(page_bytes(*child, 300), std::vector<std::byte>(kPageSize));
  }
  ASSERT_TRUE(reclaim_all(*r.memory));
  EXPECT_EQ(frames_in_use(r.memory->frame_counts()), 0u);
}

TEST(PageCache, AnUnreadableChunkFailsTheFaultAndIsTriedAgain) {
  Restore r;
  r.source->add(300);
  r.source->failing_chunk = 300 / PageSource::kChunkPages;
  r.make_cache();
  std::unique_ptr<AddressSpace> space = r.space("clone");
  Result<Resolved> fault =
      space->handle_fault(Gfn(300).gpa(), Access::kRead, HostWaiter::instance());
  ASSERT_FALSE(fault.ok());
  EXPECT_NE(fault.error().message.find("unreadable"), std::string::npos);
  EXPECT_EQ(r.memory->frame_counts().data, 0u);  // the chunk's frames went back
  r.source->failing_chunk = ~uint64_t{0};
  EXPECT_EQ(page_bytes(*space, 300), pattern(kPageSize, 300));
  EXPECT_EQ(r.source->reads.load(), 2u);
}

TEST(PageCache, ConcurrentFirstTouchesReadEachChunkOnce) {
  constexpr uint64_t kPages = 256;
  Restore r;
  for (uint64_t gfn = 1024; gfn < 1024 + kPages; ++gfn)
    r.source->add(gfn);
  r.make_cache();
  std::vector<std::unique_ptr<AddressSpace>> spaces;
  for (int i = 0; i < 4; ++i)
    spaces.push_back(r.space("clone" + std::to_string(i)));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (size_t i = 0; i < spaces.size(); ++i) {
    threads.emplace_back([&, i] {
      for (uint64_t gfn = 1024; gfn < 1024 + kPages; ++gfn) {
        if (page_bytes(*spaces[i], gfn) != pattern(kPageSize, gfn)) wrong.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(r.source->reads.load(), kPages / PageSource::kChunkPages);
  EXPECT_EQ(r.cache->frames(), kPages);
}

TEST(PageCache, ASnapshotStoresEveryPageOrOnlyThoseNoLongerShared) {
  Restore r;
  for (uint64_t gfn = 256; gfn < 272; ++gfn)
    r.source->add(gfn);
  r.make_cache();
  std::unique_ptr<AddressSpace> space = r.space("clone");
  (void)page_bytes(*space, 256);         // read: still the source's
  write_u64(*space, Gfn(257).gpa(), 7);  // written: its own
  write_bytes(*space, Gfn(258).gpa(), std::vector<std::byte>(kPageSize));   // its own, zero
  write_u64(*space, Gfn(4096).gpa(), 9);                                    // no data in the source
  write_bytes(*space, Gfn(4097).gpa(), std::vector<std::byte>(kPageSize));  // zero over zero
  std::unique_ptr<MemorySnapshot> snapshot = unwrap(space->snapshot("snap"));
  auto gfns = [&](PagesToStore which) {
    std::vector<uint64_t> seen;
    unwrap(snapshot->for_each_page(which, [&](Gfn gfn, const std::byte*) -> Result<void> {
      seen.push_back(gfn.value());
      return Ok{};
    }));
    return seen;
  };
  std::vector<uint64_t> all;
  for (uint64_t gfn = 256; gfn < 272; ++gfn)
    if (gfn != 258) all.push_back(gfn);
  all.push_back(4096);
  EXPECT_EQ(gfns(PagesToStore::kAll), all);
  EXPECT_EQ(gfns(PagesToStore::kNotShared), (std::vector<uint64_t>{257, 258, 4096}));
}

}  // namespace
}  // namespace vmfork::testing
