// TranslationCache: a vCPU's direct-mapped, EPTP-tagged translation cache
// with O(1) single-context and all-context flushes.
#include "ept/tlb.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

#include "base/types.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

const Eptp kEptpA = Eptp::for_root(FrameId(0x10));
const Eptp kEptpB = Eptp::for_root(FrameId(0x11));
constexpr Gfn kGfn(0x1234);
constexpr FrameId kFrame(0x777);

class TranslationCacheTest : public ::testing::Test {
 protected:
  // About 40 KiB: on the heap rather than the test's stack.
  std::unique_ptr<TranslationCache> owned_ = std::make_unique<TranslationCache>();
  TranslationCache& tlb_ = *owned_;
};

TEST_F(TranslationCacheTest, EmptyCacheMisses) {
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn), nullptr);
  EXPECT_EQ(tlb_.lookup(kEptpA, Gfn(0)), nullptr);
}

TEST_F(TranslationCacheTest, InsertedTranslationHits) {
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kReadExecute);
  const TranslationCache::Hit* hit = tlb_.lookup(kEptpA, kGfn);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->frame, kFrame);
  EXPECT_EQ(hit->allowed, Access::kReadExecute);
}

TEST_F(TranslationCacheTest, TranslationIsTaggedWithItsEptp) {
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kAll);
  EXPECT_EQ(tlb_.lookup(kEptpB, kGfn), nullptr);
}

TEST_F(TranslationCacheTest, OtherGfnsMiss) {
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kAll);
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn + 1), nullptr);
}

TEST_F(TranslationCacheTest, SameGfnUnderTwoEptpsIsTwoTranslationsOnlyOneOfWhichSurvives) {
  // Direct-mapped by gfn: the same gfn under another EPTP takes the slot.
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kAll);
  tlb_.insert(kEptpB, kGfn, FrameId(0x888), Access::kRead);
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn), nullptr);
  ASSERT_NE(tlb_.lookup(kEptpB, kGfn), nullptr);
  EXPECT_EQ(tlb_.lookup(kEptpB, kGfn)->frame, FrameId(0x888));
}

TEST_F(TranslationCacheTest, FlushContextDropsOnlyThatEptpsEntries) {
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kAll);
  tlb_.insert(kEptpA, kGfn + 1, kFrame, Access::kAll);
  tlb_.insert(kEptpB, kGfn + 2, FrameId(0x888), Access::kAll);
  tlb_.flush_context(kEptpA);
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn), nullptr);
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn + 1), nullptr);
  ASSERT_NE(tlb_.lookup(kEptpB, kGfn + 2), nullptr);
  EXPECT_EQ(tlb_.lookup(kEptpB, kGfn + 2)->frame, FrameId(0x888));
}

TEST_F(TranslationCacheTest, FlushAllDropsEveryContext) {
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kAll);
  tlb_.insert(kEptpB, kGfn + 1, kFrame, Access::kAll);
  tlb_.flush_all();
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn), nullptr);
  EXPECT_EQ(tlb_.lookup(kEptpB, kGfn + 1), nullptr);
}

TEST_F(TranslationCacheTest, TranslationsInsertedAfterAFlushHit) {
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kAll);
  tlb_.flush_context(kEptpA);
  tlb_.insert(kEptpA, kGfn, FrameId(0x999), Access::kRead);
  ASSERT_NE(tlb_.lookup(kEptpA, kGfn), nullptr);
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn)->frame, FrameId(0x999));
}

TEST_F(TranslationCacheTest, EveryFlushIncrementsFlushes) {
  EXPECT_EQ(tlb_.flushes(), 0u);
  tlb_.flush_context(kEptpA);
  EXPECT_EQ(tlb_.flushes(), 1u);
  tlb_.flush_all();
  EXPECT_EQ(tlb_.flushes(), 2u);
  tlb_.flush_context(Eptp::for_root(FrameId(0x55)));  // a context never cached
  EXPECT_EQ(tlb_.flushes(), 3u);
}

TEST_F(TranslationCacheTest, InsertAndLookupDoNotCountAsFlushes) {
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kAll);
  (void)tlb_.lookup(kEptpA, kGfn);
  EXPECT_EQ(tlb_.flushes(), 0u);
}

TEST_F(TranslationCacheTest, FourEptpsShareTheCacheWithoutEvicting) {
  static_assert(TranslationCache::kContexts == 4);
  for (uint64_t i = 0; i < 4; ++i) {
    tlb_.insert(Eptp::for_root(FrameId(0x20 + i)), Gfn(i), FrameId(0x300 + i), Access::kAll);
  }
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_NE(tlb_.lookup(Eptp::for_root(FrameId(0x20 + i)), Gfn(i)), nullptr) << i;
  }
}

TEST_F(TranslationCacheTest, FifthEptpEvictsAContextAndInvalidatesItsEntries) {
  for (uint64_t i = 0; i < 4; ++i) {
    tlb_.insert(Eptp::for_root(FrameId(0x20 + i)), Gfn(i), FrameId(0x300 + i), Access::kAll);
  }
  const Eptp fifth = Eptp::for_root(FrameId(0x24));
  tlb_.insert(fifth, Gfn(4), FrameId(0x304), Access::kAll);

  ASSERT_NE(tlb_.lookup(fifth, Gfn(4)), nullptr);
  int survivors = 0;
  for (uint64_t i = 0; i < 4; ++i) {
    const Eptp eptp = Eptp::for_root(FrameId(0x20 + i));
    if (tlb_.lookup(eptp, Gfn(i)) != nullptr) {
      ++survivors;
    } else {
      EXPECT_EQ(tlb_.lookup(fifth, Gfn(i)), nullptr)
          << "the evicted context's entries must not become the new context's";
    }
  }
  EXPECT_EQ(survivors, 3);
}

TEST_F(TranslationCacheTest, EvictedEptpMissesWhenItComesBack) {
  const Eptp first = Eptp::for_root(FrameId(0x20));
  tlb_.insert(first, kGfn, kFrame, Access::kAll);
  for (uint64_t i = 1; i <= 4; ++i) {
    tlb_.insert(Eptp::for_root(FrameId(0x20 + i)), Gfn(i), FrameId(0x300 + i), Access::kAll);
  }
  EXPECT_EQ(tlb_.lookup(first, kGfn), nullptr);
}

TEST_F(TranslationCacheTest, DirectMappedConflictReplacesTheOlderEntry) {
  const Gfn conflicting = kGfn + TranslationCache::kEntries;
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kAll);
  tlb_.insert(kEptpA, conflicting, FrameId(0x888), Access::kRead);
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn), nullptr);
  const TranslationCache::Hit* hit = tlb_.lookup(kEptpA, conflicting);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->frame, FrameId(0x888));
  EXPECT_EQ(hit->allowed, Access::kRead);
}

TEST_F(TranslationCacheTest, ReinsertingAGfnUpdatesItsTranslation) {
  tlb_.insert(kEptpA, kGfn, kFrame, Access::kRead);
  tlb_.insert(kEptpA, kGfn, FrameId(0x888), Access::kAll);
  ASSERT_NE(tlb_.lookup(kEptpA, kGfn), nullptr);
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn)->frame, FrameId(0x888));
  EXPECT_EQ(tlb_.lookup(kEptpA, kGfn)->allowed, Access::kAll);
}

}  // namespace
}  // namespace vmfork
