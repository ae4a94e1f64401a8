// Accounting (DESIGN section 10) and the fault-path counters: N clones of a
// snapshot that each write k pages use base + N*k data frames and, per clone,
// a root plus the tables copied on the write paths; the global counts, the
// sharing walk and the per-space walks agree with each other.
#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "guestmm/accounting.h"
#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 64 * kMiB;
constexpr Gfn kBaseGfn{256};  // 1 MiB: inside one 2 MiB region with every page below

Gpa page(uint64_t index) {
  return (kBaseGfn + index).gpa();
}

// A space of its own with `pages` pages written at page(0..pages).
std::unique_ptr<AddressSpace> make_base(GuestMemory& memory, uint64_t pages) {
  std::unique_ptr<AddressSpace> space = unwrap(memory.create_space("base", kRam));
  for (uint64_t i = 0; i < pages; ++i)
    write_u64(*space, page(i), 1000 + i);
  return space;
}

TEST(Accounting, OneSpaceOwnsItsPagesExclusively) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = make_base(*memory, 5);
  // PML4, PDPT, PD and PT: one path.
  EXPECT_EQ(memory->frame_counts().table, 4u);
  EXPECT_EQ(memory->frame_counts().data, 5u);
  const SpaceAccounting own = space->account();
  EXPECT_EQ(own.tables_exclusive, 4u);
  EXPECT_EQ(own.tables_shared, 0u);
  EXPECT_EQ(own.data_exclusive, 5u);
  EXPECT_EQ(own.data_shared, 0u);
  const MemoryAccounting all = memory->account();
  EXPECT_EQ(all.data_exclusive, 5u);
  EXPECT_EQ(all.data_shared, 0u);
  EXPECT_EQ(all.frames.data, 5u);
}

TEST(Accounting, AfterACloneEverythingBelowTheRootsIsShared) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = make_base(*memory, 5);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  for (const AddressSpace* space : {source.get(), clone.get()}) {
    const SpaceAccounting own = space->account();
    EXPECT_EQ(own.tables_exclusive, 1u) << space->name();  // its root
    EXPECT_EQ(own.tables_shared, 3u) << space->name();
    EXPECT_EQ(own.data_exclusive, 0u) << space->name();
    EXPECT_EQ(own.data_shared, 5u) << space->name();
  }
  const MemoryAccounting all = memory->account();
  EXPECT_EQ(all.data_exclusive, 0u);
  EXPECT_EQ(all.data_shared, 5u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

struct ClonesOfASnapshot {
  uint64_t clones;
  uint64_t base_pages;
  uint64_t pages_written;  // per clone, from page(first_written)
  uint64_t first_written;
};

class SnapshotClonesAccounting : public ::testing::TestWithParam<ClonesOfASnapshot> {};

// The section 10 figure: N clones of a snapshot each writing k distinct pages
// (some over the snapshot's pages, some fresh, all inside one 2 MiB region).
TEST_P(SnapshotClonesAccounting, FramesInUseAreBasePlusWrittenPagesPlusTableCopies) {
  const ClonesOfASnapshot p = GetParam();
  std::unique_ptr<GuestMemory> memory = make_memory(64 * kMiB);
  std::unique_ptr<MemorySnapshot> snapshot;
  {
    std::unique_ptr<AddressSpace> source = make_base(*memory, p.base_pages);
    snapshot = unwrap(source->snapshot("snap"));
  }
  ASSERT_TRUE(reclaim_all(*memory));
  const FrameCounts base = memory->frame_counts();
  ASSERT_EQ(base.data, p.base_pages);
  ASSERT_EQ(base.table, 4u) << "the snapshot's root, PDPT, PD and PT";

  // Pages the clones overwrite (copies) and pages nobody had (demand zero).
  const uint64_t overwritten = p.first_written >= p.base_pages
                                   ? 0
                                   : std::min(p.base_pages - p.first_written, p.pages_written);
  const uint64_t fresh = p.pages_written - overwritten;

  std::vector<std::unique_ptr<AddressSpace>> clones;
  for (uint64_t c = 0; c < p.clones; ++c) {
    clones.push_back(unwrap(snapshot->spawn("clone" + std::to_string(c))));
    AddressSpace& clone = *clones.back();
    for (uint64_t i = 0; i < p.pages_written; ++i) {
      write_u64(clone, page(p.first_written + i), (c + 1) * 1'000'000 + i);
    }
    const FaultCounters counters = clone.counters();
    EXPECT_EQ(counters.copies, overwritten);
    EXPECT_EQ(counters.demand_zero, fresh);
    EXPECT_EQ(counters.shootdowns, overwritten);
    ASSERT_TRUE(IsOk(memory->verify_references())) << "after clone " << c;

    // Frames in use so far, with c + 1 clones written.
    const uint64_t n = c + 1;
    const FrameCounts counts = memory->frame_counts();
    EXPECT_EQ(counts.data, base.data + n * p.pages_written);
    // Per clone: its root, and copies of the PDPT, the PD and the PT on the
    // path to the 2 MiB region it wrote.
    EXPECT_EQ(counts.table, base.table + n * (1 + 3));
  }

  // Nobody else wrote the snapshot's pages: the clones read them unchanged,
  // and their own writes are their own.
  for (uint64_t c = 0; c < p.clones; ++c) {
    for (uint64_t i = 0; i < p.base_pages; ++i) {
      const bool written = i >= p.first_written && i < p.first_written + p.pages_written;
      EXPECT_EQ(read_u64(*clones[c], page(i)),
                written ? (c + 1) * 1'000'000 + (i - p.first_written) : 1000 + i);
    }
  }

  // Per space. Each clone's path is its own (root, PDPT, PD, PT copies) and
  // so are the pages it wrote; the snapshot pages it did not overwrite are
  // shared with the snapshot.
  for (const auto& clone : clones) {
    const SpaceAccounting own = clone->account();
    EXPECT_EQ(own.tables_exclusive, 4u) << clone->name();
    EXPECT_EQ(own.tables_shared, 0u) << clone->name();
    EXPECT_EQ(own.data_exclusive, p.pages_written) << clone->name();
    EXPECT_EQ(own.data_shared, p.base_pages - overwritten) << clone->name();
  }
  // Every clone copied its path, so the snapshot's tables are its alone; the
  // pages every clone overwrote are back to one reference (the snapshot's).
  const SpaceAccounting snap = snapshot->account();
  EXPECT_EQ(snap.tables_exclusive, 4u);
  EXPECT_EQ(snap.tables_shared, 0u);
  EXPECT_EQ(snap.data_exclusive, p.clones > 0 ? overwritten : p.base_pages);
  EXPECT_EQ(snap.data_shared, p.clones > 0 ? p.base_pages - overwritten : 0);

  const MemoryAccounting all = memory->account();
  EXPECT_EQ(all.frames.data, base.data + p.clones * p.pages_written);
  EXPECT_EQ(all.frames.table, base.table + p.clones * 4);
  EXPECT_EQ(all.data_exclusive, p.clones * p.pages_written + snap.data_exclusive);
  EXPECT_EQ(all.data_shared, snap.data_shared);
  EXPECT_EQ(all.data_exclusive + all.data_shared, all.frames.data)
      << "every data frame in use is reachable from a live root";
  uint64_t sum_exclusive = snap.data_exclusive;
  for (const auto& clone : clones)
    sum_exclusive += clone->account().data_exclusive;
  EXPECT_EQ(sum_exclusive, all.data_exclusive);
  EXPECT_TRUE(IsOk(memory->verify_references()));

  // And it all comes back.
  clones.clear();
  snapshot.reset();
  ASSERT_TRUE(reclaim_all(*memory));
  EXPECT_EQ(memory->frame_counts().free, memory->frame_counts().capacity);
}

std::string ParamName(const ::testing::TestParamInfo<ClonesOfASnapshot>& param_info) {
  const ClonesOfASnapshot& p = param_info.param;
  std::ostringstream name;
  name << "N" << p.clones << "_base" << p.base_pages << "_k" << p.pages_written << "_from"
       << p.first_written;
  return name.str();
}

INSTANTIATE_TEST_SUITE_P(
    Section10, SnapshotClonesAccounting,
    ::testing::Values(
        ClonesOfASnapshot{.clones = 1, .base_pages = 8, .pages_written = 1, .first_written = 0},
        ClonesOfASnapshot{.clones = 4, .base_pages = 8, .pages_written = 6, .first_written = 4},
        ClonesOfASnapshot{.clones = 8, .base_pages = 16, .pages_written = 16, .first_written = 0},
        ClonesOfASnapshot{.clones = 5, .base_pages = 4, .pages_written = 10, .first_written = 100}),
    ParamName);

TEST(Accounting, WritesInTwoRegionsCopyTheSharedUpperTablesOnce) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  write_u64(*source, Gpa(kMiB), 1);             // region 0
  write_u64(*source, Gpa(5 * kMiB), 2);         // region 2
  ASSERT_EQ(memory->frame_counts().table, 5u);  // PML4, PDPT, PD, two PTs
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  const FrameCounts before = memory->frame_counts();
  write_u64(*clone, Gpa(kMiB), 3);
  EXPECT_EQ(memory->frame_counts().table, before.table + 3);  // PDPT, PD, PT 0
  write_u64(*clone, Gpa(5 * kMiB), 4);
  EXPECT_EQ(memory->frame_counts().table, before.table + 4);  // and PT 2 only
  EXPECT_EQ(memory->frame_counts().data, before.data + 2);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(FaultCounters, FirstTouchIsDemandZero) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  write_u64(*space, page(0), 1);
  const FaultCounters counters = space->counters();
  EXPECT_EQ(counters.faults, 1u);
  EXPECT_EQ(counters.demand_zero, 1u);
  EXPECT_EQ(counters.copies, 0u);
  EXPECT_EQ(counters.in_place, 0u);
  EXPECT_EQ(counters.shootdowns, 0u);
  write_u64(*space, page(0) + 8, 2);
  EXPECT_EQ(space->counters().faults, 1u) << "a writable page does not fault again";
}

TEST(FaultCounters, WriteToASharedPageCopiesOnceAndShootsDownOnce) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = make_base(*memory, 1);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  const FaultCounters before = clone->counters();
  const uint64_t data_before = memory->frame_counts().data;
  write_u64(*clone, page(0), 2);
  const FaultCounters after = clone->counters();
  EXPECT_EQ(after.faults - before.faults, 1u);
  EXPECT_EQ(after.copies - before.copies, 1u);
  EXPECT_EQ(after.shootdowns - before.shootdowns, 1u);
  EXPECT_EQ(after.in_place - before.in_place, 0u);
  EXPECT_EQ(after.demand_zero - before.demand_zero, 0u);
  EXPECT_EQ(memory->frame_counts().data, data_before + 1);
  EXPECT_EQ(read_u64(*source, page(0)), 1000u);
}

TEST(FaultCounters, WriteToAPageWhoseOtherSharersAreGoneIsUpgradedInPlace) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = make_base(*memory, 1);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  clone.reset();  // the only other sharer
  const FaultCounters before = source->counters();
  const uint64_t data_before = memory->frame_counts().data;
  write_u64(*source, page(0), 2);
  const FaultCounters after = source->counters();
  EXPECT_EQ(after.faults - before.faults, 1u);
  EXPECT_EQ(after.in_place - before.in_place, 1u);
  EXPECT_EQ(after.copies - before.copies, 0u);
  EXPECT_EQ(after.shootdowns - before.shootdowns, 0u) << "an upgrade needs no shootdown";
  EXPECT_EQ(memory->frame_counts().data, data_before);
  EXPECT_EQ(read_u64(*source, page(0)), 2u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(FaultCounters, ClonedSpaceThatWritesFirstLeavesTheLastHolderAnInPlaceUpgrade) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = make_base(*memory, 1);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  write_u64(*clone, page(0), 2);  // copies; the source is now F's only holder
  const FaultCounters before = source->counters();
  write_u64(*source, page(0), 3);
  const FaultCounters after = source->counters();
  EXPECT_EQ(after.copies - before.copies, 0u);
  EXPECT_EQ(after.in_place - before.in_place, 1u);
  EXPECT_EQ(read_u64(*source, page(0)), 3u);
  EXPECT_EQ(read_u64(*clone, page(0)), 2u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(FaultCounters, CloneIsOneShootdownOfTheSourcesVcpus) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = make_base(*memory, 1);
  const uint64_t before = source->counters().shootdowns;
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  EXPECT_EQ(source->counters().shootdowns, before + 1);
  EXPECT_EQ(clone->counters().shootdowns, 0u);
  std::unique_ptr<MemorySnapshot> snapshot = unwrap(source->snapshot("snap"));
  EXPECT_EQ(source->counters().shootdowns, before + 2);
}

}  // namespace
}  // namespace vmfork::testing
