// ZeroPagesArray: elements start zero, and only writes bring pages in (a
// read first would map the kernel's zero page, which the write after it
// copies with a TLB flush of every CPU running the process). Residency is
// read with mincore(2): a page the process never touched is not resident;
// one a read mapped to the zero page is.
#include "base/zero_pages.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace vmfork {
namespace {

constexpr size_t kPage = 4096;

// 40 bytes, as a translation-cache entry: some elements span two pages.
struct Straddler {
  uint64_t a, b, c, d, e;
};
static_assert(sizeof(Straddler) == 40);
// 8 bytes: a page holds 512.
struct Word {
  uint64_t v;
};

template <class T>
std::vector<bool> resident_pages(const ZeroPagesArray<T>& array) {
  const size_t pages = (array.size() * sizeof(T) + kPage - 1) / kPage;
  std::vector<unsigned char> vec(pages);
  EXPECT_EQ(mincore(const_cast<T*>(array.data()), array.size() * sizeof(T), vec.data()), 0);
  std::vector<bool> resident(pages);
  for (size_t i = 0; i < pages; ++i)
    resident[i] = (vec[i] & 1) != 0;
  return resident;
}

size_t count(const std::vector<bool>& resident) {
  size_t n = 0;
  for (bool r : resident)
    n += r ? 1 : 0;
  return n;
}

TEST(ZeroPagesArray, ReadsOfAFreshArrayAreZeroAndTouchNoPage) {
  ZeroPagesArray<Word> array(64 * kPage / sizeof(Word));
  ASSERT_EQ(reinterpret_cast<uintptr_t>(array.data()) % kPage, 0u);
  for (size_t i = 0; i < array.size(); i += 7)
    EXPECT_EQ(array.read(i).v, 0u);
  EXPECT_EQ(count(resident_pages(array)), 0u);
  EXPECT_EQ(array.pages_written(), 0u);
}

TEST(ZeroPagesArray, AWriteBringsInItsPageOnlyAndIsReadBack) {
  ZeroPagesArray<Word> array(64 * kPage / sizeof(Word));
  const size_t per_page = kPage / sizeof(Word);
  array.write(10 * per_page + 3).v = 0xabcd;
  EXPECT_EQ(array.read(10 * per_page + 3).v, 0xabcdu);
  EXPECT_EQ(array.read(10 * per_page + 4).v, 0u);  // same page, never written
  EXPECT_EQ(array.read(11 * per_page).v, 0u);      // the next page: still untouched
  const std::vector<bool> resident = resident_pages(array);
  EXPECT_EQ(count(resident), 1u);
  EXPECT_TRUE(resident[10]);
  EXPECT_EQ(array.pages_written(), 1u);
}

TEST(ZeroPagesArray, AnElementAcrossAPageBoundaryMarksBothPages) {
  ZeroPagesArray<Straddler> array(4 * kPage / sizeof(Straddler));
  const size_t straddler = kPage / sizeof(Straddler);  // 102: bytes 4080..4119
  ASSERT_LT(straddler * sizeof(Straddler), kPage);
  ASSERT_GT((straddler + 1) * sizeof(Straddler), kPage);
  array.write(straddler) = Straddler{1, 2, 3, 4, 5};
  EXPECT_EQ(array.read(straddler).e, 5u);
  EXPECT_EQ(array.read(straddler + 1).a, 0u);  // on page 1, written as zero by nobody
  const std::vector<bool> resident = resident_pages(array);
  EXPECT_TRUE(resident[0]);
  EXPECT_TRUE(resident[1]);
  EXPECT_FALSE(resident[2]);
  EXPECT_EQ(array.pages_written(), 2u);
}

TEST(ZeroPagesArray, AnElementWithOneUnwrittenPageReadsAsZeroWithoutTouchingIt) {
  ZeroPagesArray<Straddler> array(4 * kPage / sizeof(Straddler));
  const size_t straddler = kPage / sizeof(Straddler);
  array.write(straddler - 1) = Straddler{7, 7, 7, 7, 7};  // page 0 only
  EXPECT_EQ(array.read(straddler).e, 0u);  // its bytes 32..39 lie on page 1
  EXPECT_FALSE(resident_pages(array)[1]);
}

TEST(ZeroPagesArray, MovingKeepsTheContentsAndWhatWasWritten) {
  ZeroPagesArray<Word> array(2 * kPage / sizeof(Word));
  array.write(1).v = 42;
  ZeroPagesArray<Word> moved(std::move(array));
  EXPECT_EQ(moved.read(1).v, 42u);
  EXPECT_EQ(moved.pages_written(), 1u);
}

}  // namespace
}  // namespace vmfork
