// EptTree: map, clone, unshare and release of copy-on-write EPT trees
// (DESIGN section 3), over a fake table memory that records every free.
#include "ept/ept_tree.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "base/types.h"
#include "base/waiter.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/table_memory.h"
#include "ept/walker.h"
#include "tests/ept/fake_table_memory.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

using ept_test::FakeTableMemory;

constexpr Gfn gfn_of(uint64_t pml4, uint64_t pdpt, uint64_t pd, uint64_t pt) {
  return Gfn((pml4 << 27) | (pdpt << 18) | (pd << 9) | pt);
}

// Two pages in one page table, a third under another PD of the same PDPT,
// and a fourth under another PML4 entry.
constexpr Gfn kPage = gfn_of(0, 0, 0, 5);
constexpr Gfn kSamePt = gfn_of(0, 0, 0, 6);
constexpr Gfn kOtherPd = gfn_of(0, 0, 1, 0);
constexpr Gfn kOtherPml4e = gfn_of(1, 0, 0, 0);

class EptTreeTest : public ::testing::Test {
 protected:
  FrameId new_root() {
    Result<FrameId> root = tree_.create_root();
    EXPECT_TRUE(root.ok());
    return root.ok() ? *root : FrameId();
  }
  // Maps a fresh data frame at `gfn`; the tree takes over its reference.
  FrameId map_new(FrameId root, Gfn gfn, Access access = Access::kAll) {
    Result<FrameId> data = memory_.allocate_data();
    EXPECT_TRUE(data.ok());
    const Result<void> mapped = tree_.map(root, gfn, *data, access, waiter_);
    EXPECT_TRUE(mapped.ok()) << (mapped.ok() ? "" : mapped.error().message);
    return *data;
  }
  // The root with kPage, kSamePt, kOtherPd and kOtherPml4e mapped.
  FrameId populated_root() {
    const FrameId root = new_root();
    for (Gfn gfn : {kPage, kSamePt, kOtherPd, kOtherPml4e}) {
      data_[gfn.value()] = map_new(root, gfn);
    }
    return root;
  }

  // The table at `level` on the path to `gfn` (4 is `root` itself).
  FrameId table_on_path(FrameId root, Gfn gfn, int level) const {
    FrameId table = root;
    for (int l = kEptLevels; l > level; --l) {
      table = entry_in(table, gfn, l).frame();
    }
    return table;
  }
  EptEntry entry_in(FrameId table, Gfn gfn, int level) const {
    return EptEntry(memory_.entries(table)[ept_index(gfn, level)].load());
  }
  // The entry at `level` on the path to `gfn`.
  EptEntry entry_on_path(FrameId root, Gfn gfn, int level) const {
    return entry_in(table_on_path(root, gfn, level), gfn, level);
  }
  std::vector<EptEntry> present_entries(FrameId table) const {
    std::vector<EptEntry> present;
    for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
      const EptEntry entry(memory_.entries(table)[i].load());
      if (entry.present()) {
        present.push_back(entry);
      }
    }
    return present;
  }
  // The 512 entries of one table.
  std::vector<uint64_t> entries_of(FrameId table) const {
    std::vector<uint64_t> raw;
    for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
      raw.push_back(memory_.entries(table)[i].load());
    }
    return raw;
  }
  // Every entry of every table reachable from `root`, by table.
  std::map<uint64_t, std::vector<uint64_t>> snapshot(FrameId root) const {
    std::map<uint64_t, std::vector<uint64_t>> tables;
    tree_.for_each_table(root, [&](FrameId table, int) {
      std::vector<uint64_t>& raw = tables[table.index()];
      raw.clear();
      for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
        raw.push_back(memory_.entries(table)[i]);
      }
    });
    return tables;
  }
  std::atomic<uint64_t>* unshare(FrameId root, Gfn gfn) {
    Result<std::atomic<uint64_t>*> slot =
        tree_.unshare_path(root, gfn, MissingTables::kFail, waiter_);
    EXPECT_TRUE(slot.ok()) << (slot.ok() ? "" : slot.error().message);
    return slot.ok() ? *slot : nullptr;
  }

  // Every allocated frame was retired exactly once, as the kind it was
  // allocated as, and holds no reference.
  void expect_everything_retired_once() const {
    for (FrameId frame : memory_.allocated_frames()) {
      SCOPED_TRACE(::testing::Message() << "frame " << frame.index());
      EXPECT_EQ(memory_.times_retired(frame), 1u);
      EXPECT_EQ(memory_.retired_kind(frame), memory_.allocated_kind(frame));
      EXPECT_EQ(memory_.refcount(frame), 0u);
    }
  }

  FakeTableMemory memory_;
  EptTree tree_{memory_};
  HostWaiter waiter_;
  std::map<uint64_t, FrameId> data_;  // gfn -> data frame, filled by populated_root()
};

// --- map ---

TEST_F(EptTreeTest, MapThenWalkTranslatesToTheMappedFrame) {
  const FrameId root = new_root();
  const FrameId data = map_new(root, kPage, Access::kReadWrite);
  const WalkResult result = tree_.walk(root, kPage, Access::kWrite);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.frame, data);
  EXPECT_EQ(result.allowed, Access::kReadWrite);
}

TEST_F(EptTreeTest, MapAllocatesOnlyTheMissingTables) {
  const FrameId root = new_root();
  map_new(root, kPage);
  EXPECT_EQ(memory_.tables_allocated(), 4u) << "root, PDPT, PD, PT";
  map_new(root, kSamePt);
  EXPECT_EQ(memory_.tables_allocated(), 4u);
  map_new(root, kOtherPd);
  EXPECT_EQ(memory_.tables_allocated(), 5u) << "one PT under the existing PD, nothing above it";
}

TEST_F(EptTreeTest, MapTakesOverTheCallersReference) {
  const FrameId root = new_root();
  const FrameId data = map_new(root, kPage);
  EXPECT_EQ(memory_.refcount(data), 1u);
}

TEST_F(EptTreeTest, MapLeavesNoLockHeld) {
  const FrameId root = new_root();
  map_new(root, kPage);
  EXPECT_FALSE(entry_on_path(root, kPage, 1).locked());
  for (int level = kEptLevels; level >= 1; --level) {
    EXPECT_FALSE(memory_.frame_locked(table_on_path(root, kPage, level))) << "level " << level;
  }
}

TEST_F(EptTreeTest, MapOverAPresentLeafIsAlreadyMapped) {
  const FrameId root = new_root();
  const FrameId first = map_new(root, kPage, Access::kRead);
  const FrameId second = memory_.allocate_data().value();
  const Result<void> again = tree_.map(root, kPage, second, Access::kAll, waiter_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyMapped);
  EXPECT_EQ(entry_on_path(root, kPage, 1), EptEntry::leaf(first, Access::kRead))
      << "the existing leaf is unchanged and unlocked";
  EXPECT_EQ(memory_.refcount(second), 1u) << "a failed map does not take the reference";
}

TEST_F(EptTreeTest, MapBeyond48BitsIsOutsideRam) {
  const FrameId root = new_root();
  const FrameId data = memory_.allocate_data().value();
  const Result<void> mapped = tree_.map(root, Gfn(kMaxGfn + 1), data, Access::kAll, waiter_);
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.error().code, ErrorCode::kOutsideRam);
}

TEST_F(EptTreeTest, MapWithoutFramesForTablesIsOutOfFrames) {
  FakeTableMemory small(4);  // frame 0 (reserved), the root, a data frame, a PDPT
  EptTree tree(small);
  const FrameId root = tree.create_root().value();
  const FrameId data = small.allocate_data().value();
  const Result<void> mapped = tree.map(root, kPage, data, Access::kAll, waiter_);
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.error().code, ErrorCode::kOutOfFrames);
}

TEST_F(EptTreeTest, UnshareWithMissingTablesFailIsNotMapped) {
  const FrameId root = new_root();
  const Result<std::atomic<uint64_t>*> slot =
      tree_.unshare_path(root, kPage, MissingTables::kFail, waiter_);
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.error().code, ErrorCode::kNotMapped);
  EXPECT_EQ(memory_.tables_allocated(), 1u);
}

TEST_F(EptTreeTest, FindLeafReturnsTheLeafSlotWithoutAllocating) {
  const FrameId root = new_root();
  EXPECT_EQ(tree_.find_leaf(root, kPage), nullptr);
  const FrameId data = map_new(root, kPage);
  const size_t tables = memory_.tables_allocated();
  std::atomic<uint64_t>* slot = tree_.find_leaf(root, kPage);
  ASSERT_NE(slot, nullptr);
  EXPECT_EQ(EptEntry(slot->load()).frame(), data);
  EXPECT_EQ(tree_.find_leaf(root, kOtherPml4e), nullptr);
  EXPECT_EQ(memory_.tables_allocated(), tables);
}

// --- clone ---

TEST_F(EptTreeTest, CloneAllocatesOnlyANewRoot) {
  const FrameId root = populated_root();
  const size_t tables = memory_.tables_allocated();
  const FrameId copy = tree_.clone(root).value();
  EXPECT_NE(copy, root);
  EXPECT_EQ(memory_.tables_allocated(), tables + 1);
}

TEST_F(EptTreeTest, CloneTakesAReferenceOnEveryChildOfTheRoot) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  for (Gfn gfn : {kPage, kOtherPml4e}) {
    const FrameId pdpt = table_on_path(root, gfn, 3);
    EXPECT_EQ(table_on_path(copy, gfn, 3), pdpt);
    EXPECT_EQ(memory_.refcount(pdpt), 2u);
  }
}

TEST_F(EptTreeTest, CloneTouchesNothingBelowTheRoot) {
  const FrameId root = populated_root();
  const FrameId pd = table_on_path(root, kPage, 2);
  const FrameId pt = table_on_path(root, kPage, 1);
  const FrameId data = data_[kPage.value()];
  tree_.clone(root).value();
  EXPECT_EQ(memory_.refcount(pd), 1u);
  EXPECT_EQ(memory_.refcount(pt), 1u);
  EXPECT_EQ(memory_.refcount(data), 1u);
  EXPECT_TRUE(entry_on_path(root, kPage, 3).writable());
  EXPECT_TRUE(entry_on_path(root, kPage, 1).writable());
}

TEST_F(EptTreeTest, CloneClearsWInTheRootEntriesOfBothSides) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  for (FrameId side : {root, copy}) {
    const std::vector<EptEntry> entries = present_entries(side);
    EXPECT_EQ(entries.size(), 2u);
    for (EptEntry entry : entries) {
      EXPECT_FALSE(entry.writable());
      EXPECT_EQ(entry.access(), Access::kReadExecute);
    }
  }
}

TEST_F(EptTreeTest, CloneTranslatesReadsToTheSameFramesOnBothSides) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  for (const auto& [gfn, data] : data_) {
    SCOPED_TRACE(::testing::Message() << "gfn " << gfn);
    for (FrameId side : {root, copy}) {
      const WalkResult result = tree_.walk(side, Gfn(gfn), Access::kRead);
      ASSERT_TRUE(result.ok());
      EXPECT_EQ(result.frame, data);
    }
  }
}

TEST_F(EptTreeTest, CloneMakesWritesViolateOnBothSides) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  for (FrameId side : {root, copy}) {
    const WalkResult result = tree_.walk(side, kPage, Access::kWrite);
    EXPECT_EQ(result.kind, WalkResult::Kind::kViolation);
    EXPECT_EQ(result.qualification & exit_qualification::kWritable, 0u);
    EXPECT_NE(result.qualification & exit_qualification::kReadable, 0u);
  }
}

TEST_F(EptTreeTest, CloneOfAnEmptyRootIsEmpty) {
  const FrameId root = new_root();
  const FrameId copy = tree_.clone(root).value();
  EXPECT_TRUE(present_entries(copy).empty());
}

// --- unshare ---

TEST_F(EptTreeTest, UnshareOnACloneCopiesExactlyThePdptPdAndPtOnThePath) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  const size_t tables = memory_.tables_allocated();
  unshare(copy, kPage);
  EXPECT_EQ(memory_.tables_allocated(), tables + 3);
  for (int level = 3; level >= 1; --level) {
    EXPECT_NE(table_on_path(copy, kPage, level), table_on_path(root, kPage, level))
        << "level " << level;
  }
}

TEST_F(EptTreeTest, UnshareOnACloneLeavesTablesOffThePathShared) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  EXPECT_EQ(table_on_path(copy, kOtherPd, 1), table_on_path(root, kOtherPd, 1));
  EXPECT_EQ(table_on_path(copy, kOtherPml4e, 3), table_on_path(root, kOtherPml4e, 3));
}

TEST_F(EptTreeTest, UnshareOpensWOnEveryEntryOfThePathAboveTheLeaf) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  for (int level = kEptLevels; level > 1; --level) {
    EXPECT_TRUE(entry_on_path(copy, kPage, level).writable()) << "level " << level;
  }
}

TEST_F(EptTreeTest, UnshareMovesTheProtectionDownIntoTheCopiesEntries) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  // The copy's entries off the path lose W...
  EXPECT_FALSE(entry_on_path(copy, kOtherPd, 2).writable()) << "PD entry of another PT";
  // ...and so do the leaves of the copied PT, whose frames are now shared.
  EXPECT_FALSE(entry_on_path(copy, kPage, 1).writable());
  EXPECT_FALSE(entry_on_path(copy, kSamePt, 1).writable());
  EXPECT_EQ(tree_.walk(copy, kSamePt, Access::kWrite).kind, WalkResult::Kind::kViolation);
  EXPECT_EQ(tree_.walk(copy, kOtherPd, Access::kWrite).kind, WalkResult::Kind::kViolation);
}

TEST_F(EptTreeTest, UnshareDropsTheOldTablesReferences) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  for (int level = 3; level >= 1; --level) {
    EXPECT_EQ(memory_.refcount(table_on_path(root, kPage, level)), 1u) << "level " << level;
    EXPECT_EQ(memory_.refcount(table_on_path(copy, kPage, level)), 1u) << "level " << level;
  }
}

TEST_F(EptTreeTest, UnshareTakesReferencesOnWhatTheCopiesPointAt) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  EXPECT_EQ(memory_.refcount(table_on_path(root, kOtherPd, 1)), 2u) << "PT under both PDs";
  EXPECT_EQ(memory_.refcount(data_[kPage.value()]), 2u) << "data under both PTs";
  EXPECT_EQ(memory_.refcount(data_[kSamePt.value()]), 2u);
  EXPECT_EQ(memory_.refcount(table_on_path(root, kOtherPml4e, 3)), 2u) << "untouched PDPT";
}

TEST_F(EptTreeTest, UnshareNeverChangesWhatALeafPointsAt) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  std::atomic<uint64_t>* slot = unshare(copy, kPage);
  ASSERT_NE(slot, nullptr);
  EXPECT_EQ(slot, tree_.find_leaf(copy, kPage));
  EXPECT_EQ(EptEntry(slot->load()).frame(), data_[kPage.value()]);
  for (FrameId side : {root, copy}) {
    const WalkResult result = tree_.walk(side, kPage, Access::kRead);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result.frame, data_[kPage.value()]);
  }
}

TEST_F(EptTreeTest, UnshareOnACloneDoesNotWriteTheSharedTables) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  const auto before = snapshot(root);
  unshare(copy, kPage);
  EXPECT_EQ(snapshot(root), before) << "shared means immutable";
}

// A table whose count has fallen to 1 is still copied, never written in
// place: a walk of the VM that dropped the other reference may still be
// inside it (tests/model/README.md, "In-place unshare").
TEST_F(EptTreeTest, UnshareCopiesATableEvenWhenTheOtherSharerIsGone) {
  const FrameId root = populated_root();
  tree_.release_root(tree_.clone(root).value());
  const FrameId pdpt = table_on_path(root, kPage, 3);
  ASSERT_EQ(memory_.refcount(pdpt), 1u);
  ASSERT_FALSE(entry_on_path(root, kPage, 4).writable());
  const std::vector<uint64_t> before = entries_of(pdpt);
  const size_t tables = memory_.tables_allocated();

  unshare(root, kPage);

  // Each copy enters its children read-only, so PD and PT are copied in turn.
  EXPECT_EQ(memory_.tables_allocated(), tables + 3) << "PDPT, PD and PT";
  EXPECT_NE(table_on_path(root, kPage, 3), pdpt);
  EXPECT_EQ(entries_of(pdpt), before) << "the old table is never written";
  EXPECT_EQ(memory_.retired_kind(pdpt), FrameKind::kTable) << "it is retired, freed after a grace";
  EXPECT_TRUE(entry_on_path(root, kPage, 4).writable()) << "the parent entry gets W";
  EXPECT_FALSE(entry_on_path(root, kOtherPd, 2).writable())
      << "the copy's entries lose W, off the path too";
  EXPECT_FALSE(entry_on_path(root, kOtherPml4e, 4).writable()) << "other root entries unchanged";
}

TEST_F(EptTreeTest, UnshareCopiesAgainAfterTheCloneCopiedItsPath) {
  // The clone copies PDPT, PD and PT; the original is then the only holder
  // of its own tables, which it still enters read-only. It copies them too.
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  const size_t tables = memory_.tables_allocated();
  const FrameId pt = table_on_path(root, kPage, 1);
  const std::vector<uint64_t> before = entries_of(pt);

  unshare(root, kPage);

  EXPECT_EQ(memory_.tables_allocated(), tables + 3) << "PDPT, PD and PT";
  EXPECT_NE(table_on_path(root, kPage, 1), pt);
  EXPECT_EQ(entries_of(pt), before) << "the old table is never written";
  for (int level = kEptLevels; level > 1; --level) {
    EXPECT_TRUE(entry_on_path(root, kPage, level).writable()) << "level " << level;
  }
  EXPECT_FALSE(entry_on_path(root, kOtherPd, 2).writable()) << "its PT is shared with the clone";
  EXPECT_FALSE(entry_on_path(root, kPage, 1).writable()) << "its frame is shared with the clone";
}

TEST_F(EptTreeTest, UnshareOfAnExclusivePathChangesNothing) {
  const FrameId root = populated_root();
  const size_t tables = memory_.tables_allocated();
  const auto before = snapshot(root);
  unshare(root, kPage);
  EXPECT_EQ(memory_.tables_allocated(), tables);
  EXPECT_EQ(snapshot(root), before);
}

TEST_F(EptTreeTest, UnshareTwiceCopiesOnlyOnce) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  const size_t tables = memory_.tables_allocated();
  unshare(copy, kSamePt);
  EXPECT_EQ(memory_.tables_allocated(), tables);
}

TEST_F(EptTreeTest, UnshareBeyond48BitsIsOutsideRam) {
  const FrameId root = new_root();
  const Result<std::atomic<uint64_t>*> slot =
      tree_.unshare_path(root, Gfn(kMaxGfn + 1), MissingTables::kAllocate, waiter_);
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.error().code, ErrorCode::kOutsideRam);
}

// --- release ---

TEST_F(EptTreeTest, ReleaseRootOfALoneTreeRetiresEveryFrameOnce) {
  const FrameId root = populated_root();
  tree_.release_root(root);
  expect_everything_retired_once();
  EXPECT_EQ(memory_.retired().size(), memory_.tables_allocated() + memory_.data_allocated());
}

TEST_F(EptTreeTest, ReleaseRootOfAnEmptyTreeRetiresTheRoot) {
  const FrameId root = new_root();
  tree_.release_root(root);
  ASSERT_EQ(memory_.retired().size(), 1u);
  EXPECT_EQ(memory_.retired_kind(root), FrameKind::kTable);
}

TEST_F(EptTreeTest, ReleasingOneOfTwoSharersRetiresOnlyItsOwnFrames) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  const std::vector<FrameId> copies = {copy, table_on_path(copy, kPage, 3),
                                       table_on_path(copy, kPage, 2),
                                       table_on_path(copy, kPage, 1)};
  tree_.release_root(copy);
  for (FrameId frame : copies) {
    EXPECT_EQ(memory_.times_retired(frame), 1u);
  }
  EXPECT_EQ(memory_.retired().size(), copies.size()) << "everything else is still the original's";
  for (const auto& [gfn, data] : data_) {
    EXPECT_EQ(tree_.walk(root, Gfn(gfn), Access::kRead).frame, data);
  }
}

// Two trees that share subtrees (some of them already unshared) release
// everything exactly once, whichever goes first.
enum class ReleaseFirst { kOriginal, kClone };

class EptTreeReleaseOrderTest : public EptTreeTest,
                                public ::testing::WithParamInterface<ReleaseFirst> {};

TEST_P(EptTreeReleaseOrderTest, SharingTreesReleaseEveryFrameExactlyOnce) {
  const FrameId root = populated_root();
  const FrameId copy = tree_.clone(root).value();
  unshare(copy, kPage);
  map_new(copy, gfn_of(0, 0, 0, 7));  // a page of the clone's own
  const bool original_first = GetParam() == ReleaseFirst::kOriginal;
  tree_.release_root(original_first ? root : copy);
  tree_.release_root(original_first ? copy : root);
  expect_everything_retired_once();
}

INSTANTIATE_TEST_SUITE_P(EitherOrder, EptTreeReleaseOrderTest,
                         ::testing::Values(ReleaseFirst::kOriginal, ReleaseFirst::kClone),
                         [](const ::testing::TestParamInfo<ReleaseFirst>& param_info) {
                           return param_info.param == ReleaseFirst::kOriginal ? "OriginalFirst"
                                                                              : "CloneFirst";
                         });

// --- visiting ---

TEST_F(EptTreeTest, ForEachLeafVisitsInGfnOrder) {
  const FrameId root = new_root();
  const std::vector<Gfn> gfns = {gfn_of(3, 0, 0, 0), gfn_of(0, 0, 0, 9), gfn_of(0, 511, 2, 1),
                                 gfn_of(0, 0, 0, 1), gfn_of(0, 0, 4, 0), Gfn(kMaxGfn)};
  std::map<uint64_t, FrameId> mapped;
  for (Gfn gfn : gfns) {
    mapped[gfn.value()] = map_new(root, gfn);
  }

  std::vector<std::pair<uint64_t, FrameId>> visited;
  tree_.for_each_leaf(
      root, [&](Gfn gfn, EptEntry entry) { visited.emplace_back(gfn.value(), entry.frame()); });
  const std::vector<std::pair<uint64_t, FrameId>> expected(mapped.begin(), mapped.end());
  EXPECT_EQ(visited, expected);
}

TEST_F(EptTreeTest, ForEachLeafReportsLeavesWithoutTheLockBit) {
  const FrameId root = new_root();
  map_new(root, kPage);
  tree_.find_leaf(root, kPage)->fetch_or(EptEntry::kSoftwareLock);
  int visits = 0;
  tree_.for_each_leaf(root, [&](Gfn, EptEntry entry) {
    EXPECT_FALSE(entry.locked());
    ++visits;
  });
  EXPECT_EQ(visits, 1);
}

TEST_F(EptTreeTest, ForEachTableVisitsEveryTableWithItsLevel) {
  const FrameId root = populated_root();
  std::map<int, int> tables_per_level;
  tree_.for_each_table(root, [&](FrameId, int level) { ++tables_per_level[level]; });
  EXPECT_EQ(tables_per_level, (std::map<int, int>{{4, 1}, {3, 2}, {2, 2}, {1, 3}}));
}

}  // namespace
}  // namespace vmfork
