// GuestMemory and AddressSpace: host reads and writes through the EPT,
// demand zero, range checks, population, clones and snapshots that share
// frames copy-on-write, and frames coming back when everything is gone.
#include "guestmm/address_space.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 16 * kMiB;
constexpr Gpa kOneMiB{kMiB};

TEST(GuestMemory, CreateWithZeroPoolIsAnError) {
  const Result<std::unique_ptr<GuestMemory>> memory =
      GuestMemory::create({.pool_bytes = 0, .populate = Populate::kOnDemand});
  ASSERT_FALSE(memory.ok());
  EXPECT_EQ(memory.error().code, ErrorCode::kInvalidArgument);
}

TEST(GuestMemory, FreshManagerHasEveryFrameFree) {
  std::unique_ptr<GuestMemory> memory = make_memory(64 * kMiB);
  const FrameCounts counts = memory->frame_counts();
  EXPECT_EQ(counts.capacity, 64 * kMiB / kPageSize);
  EXPECT_EQ(counts.free, counts.capacity);
  EXPECT_EQ(counts.data, 0u);
  EXPECT_EQ(counts.table, 0u);
  EXPECT_EQ(counts.reclaiming, 0u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, NewSpaceCostsOneRootTable) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  EXPECT_EQ(space->name(), "vm");
  EXPECT_EQ(space->ram_bytes(), kRam);
  EXPECT_EQ(space->eptp().root(), space->root());
  EXPECT_EQ(memory->frame_counts().table, 1u);
  EXPECT_EQ(memory->frame_counts().data, 0u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, CreateWithBadSizesIsInvalidArgument) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  for (const uint64_t bad : {uint64_t{0}, uint64_t{1}, kPageSize - 1, kPageSize + 1, 3 * kMiB + 7,
                             (kMaxGfn + 2) * kPageSize}) {
    SCOPED_TRACE(bad);
    const Result<std::unique_ptr<AddressSpace>> space = memory->create_space("bad", bad);
    ASSERT_FALSE(space.ok());
    EXPECT_EQ(space.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(space.error().message.empty());
  }
  EXPECT_EQ(memory->frame_counts().table, 0u) << "a refused space must not keep a root";
}

TEST(AddressSpace, LargestAndSmallestSizesAreAccepted) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> small = unwrap(memory->create_space("small", kPageSize));
  std::unique_ptr<AddressSpace> huge =
      unwrap(memory->create_space("huge", (kMaxGfn + 1) * kPageSize));
  const Gpa last((kMaxGfn + 1) * kPageSize - 8);
  write_u64(*huge, last, 0x1234);
  EXPECT_EQ(read_u64(*huge, last), 0x1234u);
  write_u64(*small, Gpa(kPageSize - 8), 0x5678);
  EXPECT_EQ(read_u64(*small, Gpa(kPageSize - 8)), 0x5678u);
}

TEST(AddressSpace, WriteThenReadRoundTrips) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  const std::vector<std::byte> data = pattern(100, 1);
  write_bytes(*space, kOneMiB + 40, data);
  EXPECT_EQ(read_bytes(*space, kOneMiB + 40, data.size()), data);
}

TEST(AddressSpace, WriteAcrossAPageBoundaryRoundTrips) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  const Gpa at = kOneMiB + (kPageSize - 1000);
  const std::vector<std::byte> data = pattern(2 * kPageSize + 2000, 2);  // spans 4 pages
  write_bytes(*space, at, data);
  EXPECT_EQ(read_bytes(*space, at, data.size()), data);
  EXPECT_EQ(memory->frame_counts().data, 4u);
  // Each page holds its own part: read them one by one.
  for (uint64_t offset = 0; offset < data.size(); offset += 1000) {
    const size_t size = std::min<size_t>(1000, data.size() - offset);
    const std::vector<std::byte> part = read_bytes(*space, at + offset, size);
    EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + static_cast<ptrdiff_t>(offset)))
        << "at offset " << offset;
  }
}

TEST(AddressSpace, WriteAcrossA2MiBAnd1GiBBoundaryRoundTrips) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 2 * kGiB));
  const std::vector<std::byte> data = pattern(300, 3);
  for (const Gpa at : {Gpa(2 * kMiB - 150), Gpa(kGiB - 150)}) {
    write_bytes(*space, at, data);
    EXPECT_EQ(read_bytes(*space, at, data.size()), data);
  }
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, LaterWriteOverwritesOnlyItsBytes) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::vector<std::byte> expected = pattern(kPageSize, 4);
  write_bytes(*space, kOneMiB, expected);
  const std::vector<std::byte> patch = pattern(10, 5);
  write_bytes(*space, kOneMiB + 100, patch);
  std::copy(patch.begin(), patch.end(), expected.begin() + 100);
  EXPECT_EQ(read_bytes(*space, kOneMiB, kPageSize), expected);
  EXPECT_EQ(memory->frame_counts().data, 1u);
}

TEST(AddressSpace, UnwrittenMemoryReadsAsZeroWithoutAllocating) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  write_u64(*space, kOneMiB, 0xffff'ffff'ffff'ffff);  // a neighbour that is written
  const FrameCounts before = memory->frame_counts();
  const std::vector<std::byte> bytes = read_bytes(*space, Gpa(0), 3 * kMiB);
  const FrameCounts after = memory->frame_counts();
  for (uint64_t i = 0; i < bytes.size(); ++i) {
    if (i >= kMiB && i < kMiB + 8) continue;
    ASSERT_EQ(bytes[i], std::byte{0}) << "at " << i;
  }
  EXPECT_EQ(after.data, before.data);
  EXPECT_EQ(after.table, before.table);
  EXPECT_EQ(after.free, before.free);
}

TEST(AddressSpace, ReadOutsideRamIsOutsideRam) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::vector<std::byte> out(16);
  for (const Gpa at : {Gpa(kRam), Gpa(kRam - 8), Gpa(kRam + kPageSize), Gpa(~uint64_t{0} - 4)}) {
    SCOPED_TRACE(at.value());
    const Result<void> read = space->read(at, out);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().code, ErrorCode::kOutsideRam);
    EXPECT_FALSE(read.error().message.empty());
  }
}

TEST(AddressSpace, WriteOutsideRamIsOutsideRamAndChangesNothing) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  const std::vector<std::byte> data = pattern(16, 6);
  const FrameCounts before = memory->frame_counts();
  for (const Gpa at : {Gpa(kRam), Gpa(kRam - 8), Gpa(kRam + kPageSize), Gpa(~uint64_t{0} - 4)}) {
    SCOPED_TRACE(at.value());
    const Result<void> write = space->write(at, data);
    ASSERT_FALSE(write.ok());
    EXPECT_EQ(write.error().code, ErrorCode::kOutsideRam);
  }
  // A write that straddles the end is refused whole: the bytes inside RAM
  // were not written either.
  EXPECT_EQ(read_u64(*space, Gpa(kRam - 8)), 0u);
  EXPECT_EQ(memory->frame_counts().data, before.data);
}

TEST(AddressSpace, AccessEndingExactlyAtTheEndOfRamIsAllowed) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  write_u64(*space, Gpa(kRam - 8), 42);
  EXPECT_EQ(read_u64(*space, Gpa(kRam - 8)), 42u);
  EXPECT_TRUE(IsOk(space->write(Gpa(kRam), {})));
}

TEST(AddressSpace, PopulateMapsOneFramePerPage) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  const uint64_t data_before = memory->frame_counts().data;
  constexpr uint64_t kPages = 40;
  ASSERT_TRUE(IsOk(space->populate(kOneMiB, kPages * kPageSize)));
  EXPECT_EQ(memory->frame_counts().data, data_before + kPages);
  EXPECT_EQ(space->account().data_exclusive, kPages);
  // The populated pages read as zero and writing them allocates nothing more.
  EXPECT_EQ(read_bytes(*space, kOneMiB, kPages * kPageSize),
            std::vector<std::byte>(kPages * kPageSize));
  write_bytes(*space, kOneMiB + 5 * kPageSize, pattern(kPageSize, 7));
  EXPECT_EQ(memory->frame_counts().data, data_before + kPages);
  EXPECT_EQ(space->counters().faults, 0u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, PopulateRoundsOutToWholePages) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  // 10 bytes straddling a page boundary touch two pages.
  ASSERT_TRUE(IsOk(space->populate(kOneMiB + (kPageSize - 5), 10)));
  EXPECT_EQ(memory->frame_counts().data, 2u);
}

TEST(AddressSpace, PopulateKeepsWhatWasAlreadyWritten) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  write_u64(*space, kOneMiB + kPageSize, 77);
  ASSERT_TRUE(IsOk(space->populate(kOneMiB, 4 * kPageSize)));
  EXPECT_EQ(read_u64(*space, kOneMiB + kPageSize), 77u);
  EXPECT_EQ(memory->frame_counts().data, 4u);
  ASSERT_TRUE(reclaim_all(*memory));
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, PopulateOfZeroBytesMapsNothing) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  ASSERT_TRUE(IsOk(space->populate(kOneMiB, 0)));
  ASSERT_TRUE(IsOk(space->populate(kOneMiB + 100, 0)));  // inside a page: still empty
  EXPECT_EQ(memory->frame_counts().data, 0u);
}

TEST(AddressSpace, PopulateOutsideRamIsOutsideRam) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  const Result<void> populated = space->populate(Gpa(kRam - kPageSize), 2 * kPageSize);
  ASSERT_FALSE(populated.ok());
  EXPECT_EQ(populated.error().code, ErrorCode::kOutsideRam);
  EXPECT_EQ(memory->frame_counts().data, 0u);
}

TEST(AddressSpace, PopulateBeyondThePoolIsOutOfFrames) {
  std::unique_ptr<GuestMemory> memory = make_memory(4 * kMiB);
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  const Result<void> populated = space->populate(Gpa(0), 8 * kMiB);
  ASSERT_FALSE(populated.ok());
  EXPECT_EQ(populated.error().code, ErrorCode::kOutOfFrames);
  EXPECT_FALSE(populated.error().message.empty());
  // Failing cleanly: the accounting still adds up, and destroying the space
  // gives every frame back.
  EXPECT_TRUE(IsOk(memory->verify_references()));
  space.reset();
  ASSERT_TRUE(reclaim_all(*memory));
  EXPECT_EQ(memory->frame_counts().free, memory->frame_counts().capacity);
}

TEST(AddressSpace, CloneStartsWithTheSourceContents) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  const std::vector<std::byte> data = pattern(3 * kPageSize, 8);
  write_bytes(*source, kOneMiB + 123, data);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  EXPECT_EQ(clone->name(), "clone");
  EXPECT_EQ(clone->ram_bytes(), kRam);
  EXPECT_NE(clone->root(), source->root());
  EXPECT_EQ(read_bytes(*clone, kOneMiB + 123, data.size()), data);
  EXPECT_EQ(read_bytes(*source, kOneMiB + 123, data.size()), data);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, WritesAfterACloneAreInvisibleToTheOtherSide) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  write_u64(*source, kOneMiB, 1);
  write_u64(*source, kOneMiB + kPageSize, 2);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));

  write_u64(*source, kOneMiB, 10);                 // source writes a shared page
  write_u64(*clone, kOneMiB + kPageSize, 20);      // clone writes another one
  write_u64(*clone, kOneMiB + 2 * kPageSize, 30);  // and a page nobody had

  EXPECT_EQ(read_u64(*source, kOneMiB), 10u);
  EXPECT_EQ(read_u64(*source, kOneMiB + kPageSize), 2u);
  EXPECT_EQ(read_u64(*source, kOneMiB + 2 * kPageSize), 0u);
  EXPECT_EQ(read_u64(*clone, kOneMiB), 1u);
  EXPECT_EQ(read_u64(*clone, kOneMiB + kPageSize), 20u);
  EXPECT_EQ(read_u64(*clone, kOneMiB + 2 * kPageSize), 30u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, BothSidesWritingTheSamePageGetTheirOwnCopies) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  write_u64(*source, kOneMiB, 1);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  write_u64(*clone, kOneMiB, 2);
  write_u64(*source, kOneMiB + 8, 3);
  EXPECT_EQ(read_u64(*source, kOneMiB), 1u);
  EXPECT_EQ(read_u64(*source, kOneMiB + 8), 3u);
  EXPECT_EQ(read_u64(*clone, kOneMiB), 2u);
  EXPECT_EQ(read_u64(*clone, kOneMiB + 8), 0u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, CloneOfACloneSeesTheIntermediateState) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> a = unwrap(memory->create_space("a", kRam));
  write_u64(*a, kOneMiB, 1);
  std::unique_ptr<AddressSpace> b = unwrap(a->clone("b"));
  write_u64(*b, kOneMiB, 2);
  std::unique_ptr<AddressSpace> c = unwrap(b->clone("c"));
  write_u64(*b, kOneMiB, 3);
  write_u64(*a, kOneMiB, 4);
  EXPECT_EQ(read_u64(*a, kOneMiB), 4u);
  EXPECT_EQ(read_u64(*b, kOneMiB), 3u);
  EXPECT_EQ(read_u64(*c, kOneMiB), 2u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, CloneOutlivesItsSource) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  const std::vector<std::byte> data = pattern(5 * kPageSize, 9);
  write_bytes(*source, kOneMiB, data);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  source.reset();
  ASSERT_TRUE(reclaim_all(*memory));
  EXPECT_EQ(read_bytes(*clone, kOneMiB, data.size()), data);
  write_u64(*clone, kOneMiB, 5);
  EXPECT_EQ(read_u64(*clone, kOneMiB), 5u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, SnapshotKeepsTheContentsAtSnapshotTime) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  const std::vector<std::byte> before = pattern(2 * kPageSize, 10);
  write_bytes(*source, kOneMiB, before);
  std::unique_ptr<MemorySnapshot> snapshot = unwrap(source->snapshot("snap"));
  EXPECT_EQ(snapshot->name(), "snap");
  EXPECT_EQ(snapshot->ram_bytes(), kRam);
  write_bytes(*source, kOneMiB, pattern(2 * kPageSize, 11));
  std::unique_ptr<AddressSpace> spawned = unwrap(snapshot->spawn("spawned"));
  EXPECT_EQ(spawned->ram_bytes(), kRam);
  EXPECT_EQ(read_bytes(*spawned, kOneMiB, before.size()), before);
  EXPECT_EQ(read_bytes(*source, kOneMiB, before.size()), pattern(2 * kPageSize, 11));
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, SpawnedSpacesAreIsolatedFromEachOtherAndTheSnapshot) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  write_u64(*source, kOneMiB, 100);
  std::unique_ptr<MemorySnapshot> snapshot = unwrap(source->snapshot("snap"));
  source.reset();
  std::vector<std::unique_ptr<AddressSpace>> spawned;
  for (uint64_t i = 0; i < 4; ++i) {
    spawned.push_back(unwrap(snapshot->spawn("clone" + std::to_string(i))));
  }
  for (uint64_t i = 0; i < spawned.size(); ++i)
    write_u64(*spawned[i], kOneMiB, 200 + i);
  for (uint64_t i = 0; i < spawned.size(); ++i) {
    EXPECT_EQ(read_u64(*spawned[i], kOneMiB), 200 + i);
  }
  std::unique_ptr<AddressSpace> late = unwrap(snapshot->spawn("late"));
  EXPECT_EQ(read_u64(*late, kOneMiB), 100u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, SpawningFromASnapshotSharesEveryFrame) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  write_bytes(*source, kOneMiB, pattern(64 * kPageSize, 12));
  std::unique_ptr<MemorySnapshot> snapshot = unwrap(source->snapshot("snap"));
  const FrameCounts before = memory->frame_counts();
  constexpr uint64_t kClones = 8;
  std::vector<std::unique_ptr<AddressSpace>> spawned;
  for (uint64_t i = 0; i < kClones; ++i)
    spawned.push_back(unwrap(snapshot->spawn("clone")));
  const FrameCounts after = memory->frame_counts();
  EXPECT_EQ(after.data, before.data) << "spawning copied data frames";
  EXPECT_EQ(after.table, before.table + kClones) << "each clone costs its root table only";
  for (const auto& clone : spawned) {
    EXPECT_EQ(read_bytes(*clone, kOneMiB, 64 * kPageSize), pattern(64 * kPageSize, 12));
  }
  EXPECT_EQ(memory->frame_counts().data, before.data) << "reading copied data frames";
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, CloneOfAPopulated64MiBSpaceCostsOneTable) {
  std::unique_ptr<GuestMemory> memory = make_memory(128 * kMiB);
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", 64 * kMiB));
  ASSERT_TRUE(IsOk(source->populate(Gpa(0), 64 * kMiB)));
  const FrameCounts before = memory->frame_counts();
  EXPECT_EQ(before.data, 64 * kMiB / kPageSize);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  const FrameCounts after = memory->frame_counts();
  EXPECT_EQ(after.table, before.table + 1);
  EXPECT_EQ(after.data, before.data);
  EXPECT_EQ(after.free, before.free - 1);
  // A snapshot costs the same.
  std::unique_ptr<MemorySnapshot> snapshot = unwrap(source->snapshot("snap"));
  EXPECT_EQ(memory->frame_counts().table, before.table + 2);
  EXPECT_EQ(memory->frame_counts().data, before.data);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, DestroyingEverythingReturnsEveryFrame) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  {
    std::unique_ptr<AddressSpace> a = unwrap(memory->create_space("a", 2 * kGiB));
    write_bytes(*a, kOneMiB, pattern(10 * kPageSize, 13));
    write_bytes(*a, Gpa(kGiB + 3 * kMiB), pattern(kPageSize, 14));
    ASSERT_TRUE(IsOk(a->populate(Gpa(8 * kMiB), 16 * kPageSize)));
    std::unique_ptr<AddressSpace> b = unwrap(a->clone("b"));
    std::unique_ptr<MemorySnapshot> snapshot = unwrap(b->snapshot("snap"));
    std::unique_ptr<AddressSpace> c = unwrap(snapshot->spawn("c"));
    write_u64(*a, kOneMiB, 1);
    write_u64(*b, kOneMiB + kPageSize, 2);
    write_u64(*c, Gpa(kGiB + 3 * kMiB), 3);
    write_u64(*c, Gpa(kGiB + 9 * kMiB), 4);
    EXPECT_TRUE(IsOk(memory->verify_references()));
    // Destroyed in an order where shared subtrees outlive their first owner.
    a.reset();
    snapshot.reset();
    EXPECT_TRUE(IsOk(memory->verify_references()));
  }
  ASSERT_TRUE(reclaim_all(*memory));
  const FrameCounts counts = memory->frame_counts();
  EXPECT_EQ(counts.data, 0u);
  EXPECT_EQ(counts.table, 0u);
  EXPECT_EQ(counts.reclaiming, 0u);
  EXPECT_EQ(counts.free, counts.capacity);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, FreedFramesAreReusedAfterReclamation) {
  // A pool that only fits the workload if frames come back.
  std::unique_ptr<GuestMemory> memory = make_memory(2 * kMiB);  // 512 frames
  for (int round = 0; round < 20; ++round) {
    std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
    write_bytes(*space, Gpa(0), pattern(100 * kPageSize, static_cast<uint64_t>(round)));
    std::unique_ptr<AddressSpace> clone = unwrap(space->clone("clone"));
    write_bytes(*clone, Gpa(0), pattern(100 * kPageSize, 99));
    EXPECT_EQ(read_bytes(*space, Gpa(0), 100 * kPageSize),
              pattern(100 * kPageSize, static_cast<uint64_t>(round)));
  }
  ASSERT_TRUE(reclaim_all(*memory));
  EXPECT_EQ(memory->frame_counts().free, memory->frame_counts().capacity);
}

// Writes single pages to `space` from `first` on until the pool runs out.
void fill_pool(AddressSpace& space, Gfn first) {
  for (Gfn gfn = first;; gfn = gfn + 1) {
    const uint64_t value = 1;
    const Result<void> written = space.write(gfn.gpa(), std::as_bytes(std::span(&value, 1)));
    if (!written.ok()) {
      ASSERT_EQ(written.error().code, ErrorCode::kOutOfFrames);
      return;
    }
  }
}

TEST(AddressSpace, CloneWithAnExhaustedPoolIsOutOfFramesAndLeavesTheSourceIntact) {
  std::unique_ptr<GuestMemory> memory = make_memory(64 * kPageSize);
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  write_u64(*source, kOneMiB, 42);
  fill_pool(*source, kOneMiB.gfn() + 1);
  ASSERT_EQ(memory->frame_counts().free, 0u);
  const Result<std::unique_ptr<AddressSpace>> clone = source->clone("clone");
  ASSERT_FALSE(clone.ok());
  EXPECT_EQ(clone.error().code, ErrorCode::kOutOfFrames);
  const Result<std::unique_ptr<MemorySnapshot>> snapshot = source->snapshot("snap");
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(snapshot.error().code, ErrorCode::kOutOfFrames);
  EXPECT_TRUE(IsOk(memory->verify_references()));
  // Still the source's alone: writable in place, no fault.
  const uint64_t faults = source->counters().faults;
  write_u64(*source, kOneMiB, 43);
  EXPECT_EQ(read_u64(*source, kOneMiB), 43u);
  EXPECT_EQ(source->counters().faults, faults);
}

TEST(AddressSpace, CopyOnWriteWithAnExhaustedPoolFailsAndChangesNeitherSide) {
  std::unique_ptr<GuestMemory> memory = make_memory(64 * kPageSize);
  std::unique_ptr<AddressSpace> source = unwrap(memory->create_space("source", kRam));
  write_u64(*source, kOneMiB, 1);
  std::unique_ptr<AddressSpace> clone = unwrap(source->clone("clone"));
  std::unique_ptr<AddressSpace> filler = unwrap(memory->create_space("filler", kRam));
  fill_pool(*filler, Gfn(0));
  ASSERT_EQ(memory->frame_counts().free, 0u);

  const uint64_t value = 2;
  const Result<void> written = clone->write(kOneMiB, std::as_bytes(std::span(&value, 1)));
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::kOutOfFrames);
  EXPECT_EQ(read_u64(*clone, kOneMiB), 1u);
  EXPECT_EQ(read_u64(*source, kOneMiB), 1u);
  EXPECT_TRUE(IsOk(memory->verify_references()));

  // With frames back, the same write goes through and stays the clone's.
  filler.reset();
  write_u64(*clone, kOneMiB, 2);
  EXPECT_EQ(read_u64(*clone, kOneMiB), 2u);
  EXPECT_EQ(read_u64(*source, kOneMiB), 1u);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

TEST(AddressSpace, WriteBeyondThePoolIsOutOfFrames) {
  std::unique_ptr<GuestMemory> memory = make_memory(kMiB);  // 256 frames
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  const Result<void> write = space->write(Gpa(0), pattern(2 * kMiB, 15));
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.error().code, ErrorCode::kOutOfFrames);
  EXPECT_TRUE(IsOk(memory->verify_references()));
}

}  // namespace
}  // namespace vmfork::testing
