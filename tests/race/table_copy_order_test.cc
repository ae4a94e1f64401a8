// Unsharing a table takes the copy's references before it drops the old
// table's (DESIGN section 4, last paragraph; ept/ept_tree.cc). VM V is
// cloned from an origin that then goes away, so V's tables have a count of
// 1 but are entered read-only, and V's first write copies each of them.
// Dropping the old table's reference first would free it and, with it,
// everything below it that only it referenced, before the copy takes its
// own references: the counts no longer match the tree, and once reclaimed
// the frames are handed out again while V still maps them.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "race_harness.h"

namespace vmfork::testing {
namespace {

constexpr Gpa kBase{0x20'0000};
constexpr uint64_t kPages = 8;
constexpr uint64_t kReused = 64;

uint64_t value_of(uint64_t page) {
  return 0x7070'0000'0000'0000 | page;
}

TEST(TableCopyOrder, UnsharingALastReferenceKeepsEveryFrameBelowIt) {
  auto [memory, origin] = make_race_memory();
  for (uint64_t page = 0; page < kPages; ++page) {
    const uint64_t value = value_of(page);
    ASSERT_TRUE(
        (*origin)->write(kBase + page * kPageSize, std::as_bytes(std::span(&value, 1))).ok());
  }
  Result<std::unique_ptr<AddressSpace>> v = (*origin)->clone("v");
  ASSERT_TRUE(v.ok());
  origin->reset();  // V's tables now have one reference each, entered read-only

  const uint64_t written = 0x5555;
  ASSERT_TRUE((*v)->write(kBase, std::as_bytes(std::span(&written, 1))).ok());
  Result<void> references = (*memory)->verify_references();
  EXPECT_TRUE(references.ok()) << references.error().message;

  // Reclaim whatever was freed (no vCPU holds the epoch back), then take
  // and scribble over every frame the pool hands out again.
  for (int i = 0; i < 4; ++i)
    (*memory)->reclaimer().collect();
  std::vector<FrameId> reused;
  for (uint64_t i = 0; i < kReused; ++i) {
    Result<FrameId> frame = (*memory)->allocate_data(Zeroed::kNo);
    ASSERT_TRUE(frame.ok());
    std::memset((*memory)->frame_data(*frame), 0xee, kPageSize);
    reused.push_back(*frame);
  }

  for (uint64_t page = 0; page < kPages; ++page) {
    uint64_t word = 0;
    ASSERT_TRUE(
        (*v)->read(kBase + page * kPageSize, std::as_writable_bytes(std::span(&word, 1))).ok());
    EXPECT_EQ(word, page == 0 ? written : value_of(page)) << "page " << page;
  }
  for (FrameId frame : reused) {
    if ((*memory)->put(frame)) (*memory)->retire(frame, FrameKind::kData);
  }
}

}  // namespace
}  // namespace vmfork::testing
