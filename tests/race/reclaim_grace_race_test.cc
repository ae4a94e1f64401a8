// A freed table waits for the grace period before reuse (DESIGN section 5).
// VM V is cloned from an origin that then goes away, so V's tables have a
// count of 1 but are entered read-only. vCPU C of V reads page G and is held
// between the last two levels of its walk: it has read the entry that names
// G's leaf table and not yet the leaf. Meanwhile a write to G unshares the
// path: each old table is copied and retired (the copies are allocated
// before the old tables are freed, so the old leaf table is the last one
// freed). Frames are then reclaimed, allocated and filled with a table that
// maps every entry to itself. C has passed no quiescent point, so the retired
// tables cannot be among them, and C's walk ends on the frame V maps at G.
// A frame that went back to the pool at once would be handed out again and
// overwritten under C, whose walk would end on a frame V never mapped.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/vcpu_memory.h"
#include "race_harness.h"

namespace vmfork::testing {
namespace {

constexpr Gpa kPage{0x20'0000};
constexpr uint64_t kOriginalValue = 0x0a0a'0a0a'0a0a'0a0a;
constexpr uint64_t kWrittenValue = 0x0b0b'0b0b'0b0b'0b0b;
constexpr uint64_t kReused = 64;
constexpr int kAttempts = 5;

// Takes `count` frames and makes each a table whose every entry names it.
std::vector<FrameId> allocate_and_scribble(GuestMemory& memory, uint64_t count) {
  std::vector<FrameId> frames;
  for (uint64_t i = 0; i < count; ++i) {
    Result<FrameId> frame = memory.allocate_data(Zeroed::kNo);
    EXPECT_TRUE(frame.ok());
    if (!frame.ok()) break;
    std::atomic<uint64_t>* entries = memory.entries(*frame);
    for (uint64_t e = 0; e < kEptEntriesPerTable; ++e)
      entries[e].store(EptEntry::table(*frame, Access::kAll).raw(), std::memory_order_relaxed);
    frames.push_back(*frame);
  }
  return frames;
}

// One attempt; returns the word C's read of G found.
uint64_t c_read_through_retired_tables() {
  auto [memory, origin] = make_race_memory();
  EXPECT_TRUE((*origin)->write(kPage, std::as_bytes(std::span(&kOriginalValue, 1))).ok());
  Result<std::unique_ptr<AddressSpace>> v = (*origin)->clone("v");
  EXPECT_TRUE(v.ok());
  origin->reset();
  Result<std::unique_ptr<VcpuMemory>> c = VcpuMemory::create(**v);
  EXPECT_TRUE(c.ok());

  std::atomic<bool> c_in_walk{false};
  std::atomic<bool> frames_reused{false};
  ScopedTestPointHook hook([&, levels_read = 0](TestPoint point) mutable {
    if (vcpu_name != 'C' || point != TestPoint::kBetweenWalkLevels) return;
    if (++levels_read != kEptLevels - 1) return;  // hold C before the leaf table
    c_in_walk.store(true, std::memory_order_release);
    // Held as it is: no shootdown serviced, no quiescent point passed.
    EXPECT_TRUE(wait_for_flag(frames_reused, kAllowedWait));
  });

  uint64_t seen = 0;
  std::thread c_thread([&] {
    vcpu_name = 'C';
    seen = guest_load(**c, kPage);
    (*c)->park();
  });
  EXPECT_TRUE(wait_for_flag(c_in_walk, kAllowedWait));
  EXPECT_TRUE((*v)->write(kPage, std::as_bytes(std::span(&kWrittenValue, 1))).ok());
  for (int i = 0; i < 4; ++i)
    (*memory)->reclaimer().collect();
  const std::vector<FrameId> reused = allocate_and_scribble(**memory, kReused);
  frames_reused.store(true, std::memory_order_release);
  c_thread.join();

  for (FrameId frame : reused) {
    if ((*memory)->put(frame)) (*memory)->retire(frame, FrameKind::kData);
  }
  return seen;
}

TEST(ReclaimGraceRace, AWalkThroughRetiredTablesEndsOnAFrameTheVmMapped) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const uint64_t seen = c_read_through_retired_tables();
    ASSERT_TRUE(seen == kOriginalValue || seen == kWrittenValue)
        << "attempt " << attempt << ": C's walk ended on a frame V never mapped (read 0x"
        << std::hex << seen << ")";
  }
}

}  // namespace
}  // namespace vmfork::testing
