// The EPT walk as the processor performs it (SDM vol. 3C, "EPT Translation
// Mechanism" and "EPT Violations"). Paths are built by hand here, entry by
// entry, so the walker is tested without EptTree.
#include "ept/walker.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>

#include "base/types.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "tests/ept/fake_table_memory.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

using ept_test::FakeTableMemory;
namespace eq = exit_qualification;

// Every level uses a different index, so a walk that picks the wrong index
// at any level finds nothing.
constexpr Gfn kGfn((uint64_t{1} << 27) | (uint64_t{2} << 18) | (uint64_t{3} << 9) | 4);

class WalkerTest : public ::testing::Test {
 protected:
  // Builds the path to `gfn`: `access[level - 1]` in the entry at each level
  // (index 3 is the PML4 entry, index 0 the leaf).
  void build(std::array<Access, 4> access, Gfn gfn = kGfn) {
    table(kEptLevels) = memory_.allocate_table(HostWaiter::instance()).value();
    for (int level = kEptLevels; level > 1; --level) {
      table(level - 1) = memory_.allocate_table(HostWaiter::instance()).value();
      entry_at(level, gfn)
          .store(EptEntry::table(table(level - 1), access[static_cast<size_t>(level - 1)]).raw());
    }
    data_ = memory_.allocate_data().value();
    entry_at(1, gfn).store(EptEntry::leaf(data_, access[0]).raw());
  }
  void build_all(Access access, Gfn gfn = kGfn) { build({access, access, access, access}, gfn); }

  std::atomic<uint64_t>& entry_at(int level, Gfn gfn = kGfn) {
    return memory_.entries(table(level))[ept_index(gfn, level)];
  }
  WalkResult walk(Access requested, Gfn gfn = kGfn) {
    return ept_walk(memory_, root(), gfn, requested);
  }
  FrameId& table(int level) { return table_[static_cast<size_t>(level)]; }
  FrameId root() { return table(kEptLevels); }

  FakeTableMemory memory_;
  std::array<FrameId, kEptLevels + 1> table_{};  // by level; table(4) is the root
  FrameId data_;
};

TEST_F(WalkerTest, TranslatesAMappedPage) {
  build_all(Access::kAll);
  const WalkResult result = walk(Access::kRead);
  ASSERT_EQ(result.kind, WalkResult::Kind::kTranslation);
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.frame, data_);
  EXPECT_EQ(result.allowed, Access::kAll);
  EXPECT_EQ(result.level, 1);
}

TEST_F(WalkerTest, TranslationAllowsEveryRequestedAccessThePathAllows) {
  build_all(Access::kAll);
  for (Access requested : {Access::kRead, Access::kWrite, Access::kExecute, Access::kAll}) {
    SCOPED_TRACE(to_string(requested));
    EXPECT_TRUE(walk(requested).ok());
  }
}

TEST_F(WalkerTest, AllowedIsTheAndOfEveryLevel) {
  build({Access::kReadWrite, Access::kAll, Access::kReadExecute, Access::kAll});
  const WalkResult result = walk(Access::kRead);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.allowed, Access::kRead);
}

TEST_F(WalkerTest, EmptyRootIsAViolationAtLevel4) {
  table(kEptLevels) = memory_.allocate_table(HostWaiter::instance()).value();
  const WalkResult result = walk(Access::kRead);
  EXPECT_EQ(result.kind, WalkResult::Kind::kViolation);
  EXPECT_EQ(result.level, 4);
  EXPECT_EQ(result.qualification, eq::kDataRead);
}

TEST_F(WalkerTest, NotPresentAtEachLevelIsAViolationAtThatLevel) {
  for (int level = kEptLevels; level >= 1; --level) {
    SCOPED_TRACE(::testing::Message() << "not present at level " << level);
    build_all(Access::kAll);
    // Keeps the address bits: only bits 2:0 decide presence.
    entry_at(level).fetch_and(~EptEntry::kPermissionMask);
    const WalkResult result = walk(Access::kRead);
    EXPECT_EQ(result.kind, WalkResult::Kind::kViolation);
    EXPECT_EQ(result.level, level);
    EXPECT_EQ(result.allowed, Access::kNone);
  }
}

TEST_F(WalkerTest, NotPresentViolationReportsNoPermissionBits) {
  for (int level = kEptLevels; level >= 1; --level) {
    SCOPED_TRACE(::testing::Message() << "not present at level " << level);
    build_all(Access::kAll);
    entry_at(level).store(0);
    EXPECT_EQ(walk(Access::kWrite).qualification, eq::kDataWrite)
        << "bits 5:3 are the AND over the entries used, and a not-present entry allows nothing";
  }
}

TEST_F(WalkerTest, QualificationBits2To0AreTheRequestedAccess) {
  build_all(Access::kAll);
  entry_at(1).store(0);
  EXPECT_EQ(walk(Access::kRead).qualification, eq::kDataRead);
  EXPECT_EQ(walk(Access::kWrite).qualification, eq::kDataWrite);
  EXPECT_EQ(walk(Access::kExecute).qualification, eq::kInstructionFetch);
  EXPECT_EQ(eq::kDataRead, uint64_t{1} << 0);
  EXPECT_EQ(eq::kDataWrite, uint64_t{1} << 1);
  EXPECT_EQ(eq::kInstructionFetch, uint64_t{1} << 2);
}

TEST_F(WalkerTest, QualificationBits5To3AreTheAndOfRwxAlongTheWalk) {
  EXPECT_EQ(eq::kReadable, uint64_t{1} << 3);
  EXPECT_EQ(eq::kWritable, uint64_t{1} << 4);
  EXPECT_EQ(eq::kExecutable, uint64_t{1} << 5);
  // R everywhere, X everywhere but the PD entry, W nowhere at the leaf.
  build({Access::kReadExecute, Access::kReadWrite, Access::kAll, Access::kAll});
  const WalkResult result = walk(Access::kWrite);
  ASSERT_EQ(result.kind, WalkResult::Kind::kViolation);
  EXPECT_EQ(result.qualification, eq::kDataWrite | eq::kReadable);
  EXPECT_EQ(result.allowed, Access::kRead);
}

TEST_F(WalkerTest, WriteClearedOnlyAtTheRootIsAWriteViolationThatStaysReadable) {
  build({Access::kAll, Access::kAll, Access::kAll, Access::kReadExecute});
  const WalkResult result = walk(Access::kWrite);
  ASSERT_EQ(result.kind, WalkResult::Kind::kViolation);
  EXPECT_EQ(result.level, 1) << "a permission violation is found at the end of the walk";
  EXPECT_EQ(result.qualification, eq::kDataWrite | eq::kReadable | eq::kExecutable);
  EXPECT_EQ(result.qualification & eq::kWritable, 0u);
}

TEST_F(WalkerTest, WriteClearedOnlyAtTheRootStillTranslatesReads) {
  build({Access::kAll, Access::kAll, Access::kAll, Access::kReadExecute});
  const WalkResult result = walk(Access::kRead);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.frame, data_);
  EXPECT_EQ(result.allowed, Access::kReadExecute);
}

TEST_F(WalkerTest, FetchFromANonExecutableLeafIsAFetchViolation) {
  build({Access::kReadWrite, Access::kAll, Access::kAll, Access::kAll});
  const WalkResult result = walk(Access::kExecute);
  ASSERT_EQ(result.kind, WalkResult::Kind::kViolation);
  EXPECT_EQ(result.qualification, eq::kInstructionFetch | eq::kReadable | eq::kWritable);
}

TEST_F(WalkerTest, LargePageBitAboveTheLeafIsAMisconfiguration) {
  for (int level = kEptLevels; level > 1; --level) {
    SCOPED_TRACE(::testing::Message() << "bit 7 set at level " << level);
    build_all(Access::kAll);
    entry_at(level).fetch_or(EptEntry::kLargePage);
    const WalkResult result = walk(Access::kRead);
    EXPECT_EQ(result.kind, WalkResult::Kind::kMisconfiguration);
    EXPECT_EQ(result.level, level);
  }
}

TEST_F(WalkerTest, WriteWithoutReadIsAMisconfiguration) {
  // SDM vol. 3C, "EPT Misconfigurations": an entry is misconfigured if bit 0
  // is clear and bit 1 is set.
  for (int level = kEptLevels; level >= 1; --level) {
    SCOPED_TRACE(::testing::Message() << "write-only entry at level " << level);
    build_all(Access::kAll);
    entry_at(level).fetch_and(~EptEntry::kRead);
    entry_at(level).fetch_and(~EptEntry::kExecute);
    const WalkResult result = walk(Access::kWrite);
    EXPECT_EQ(result.kind, WalkResult::Kind::kMisconfiguration);
    EXPECT_EQ(result.level, level);
  }
}

TEST_F(WalkerTest, LargePageBitInALeafIsIgnored) {
  // SDM: bit 7 of an EPT PTE is ignored.
  build_all(Access::kAll);
  entry_at(1).fetch_or(EptEntry::kLargePage);
  const WalkResult result = walk(Access::kRead);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.frame, data_);
}

TEST_F(WalkerTest, LeafLockBitDoesNotChangeTheTranslation) {
  build_all(Access::kAll);
  entry_at(1).fetch_or(EptEntry::kSoftwareLock);
  const WalkResult result = walk(Access::kWrite);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.frame, data_);
  EXPECT_EQ(result.allowed, Access::kAll);
}

TEST_F(WalkerTest, GfnBeyond48BitsIsAViolation) {
  build_all(Access::kAll);
  const WalkResult result = walk(Access::kRead, Gfn(kMaxGfn + 1));
  EXPECT_EQ(result.kind, WalkResult::Kind::kViolation);
  EXPECT_EQ(result.qualification, eq::kDataRead);
}

TEST_F(WalkerTest, GfnBeyond48BitsDoesNotAliasALowerGfn) {
  // kGfn + 2^36 has the same four indexes as kGfn; it must not translate.
  build_all(Access::kAll);
  const Gfn alias(kGfn.value() + (kMaxGfn + 1));
  EXPECT_FALSE(walk(Access::kRead, alias).ok());
}

TEST_F(WalkerTest, HighestGfnTranslates) {
  build_all(Access::kAll, Gfn(kMaxGfn));
  const WalkResult result = walk(Access::kRead, Gfn(kMaxGfn));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.frame, data_);
}

TEST_F(WalkerTest, NeighbouringGfnInTheSameTableIsNotTranslated) {
  build_all(Access::kAll);
  const WalkResult result = walk(Access::kRead, kGfn + 1);
  EXPECT_EQ(result.kind, WalkResult::Kind::kViolation);
  EXPECT_EQ(result.level, 1);
}

}  // namespace
}  // namespace vmfork
