// Diff snapshots: a child stores only the pages that changed since its
// parent, and reading the chain gives each page from the newest snapshot
// that stores it.
#include <gtest/gtest.h>

#include "tests/snapshot/snapshot_test_support.h"

namespace vmfork::testing {
namespace {

// Pages A and B share chunk 2 with the child's B' (B overwritten) and C.
constexpr uint64_t kA = 2 * kChunkPages + 1;
constexpr uint64_t kB = 2 * kChunkPages + 5;
constexpr uint64_t kC = 2 * kChunkPages + 6;
constexpr uint64_t kD = 9 * kChunkPages;  // the child's alone, in a chunk of its own

struct Chain {
  TempDir tmp;
  Pages parent_pages{{kA, page_pattern(1)}, {kB, page_pattern(2)}};
  Pages child_pages{{kB, page_pattern(3)}, {kC, page_pattern(4)}, {kD, page_pattern(5)}};

  Chain() {
    write(tmp / "parent", parent_pages);
    SnapshotState state = sample_state();
    state.parent = tmp / "parent";
    write(tmp / "child", child_pages, sample_config(), state);
  }
};

TEST(SnapshotChain, EachPageComesFromTheNewestSnapshotThatStoresIt) {
  Chain chain;
  const OpenedSnapshot opened = unwrap(open_snapshot(chain.tmp / "child"));
  EXPECT_EQ(opened.state.parent, chain.tmp / "parent");
  EXPECT_EQ(opened.chain, (std::vector<fs::path>{fs::canonical(chain.tmp / "child"),
                                                 fs::canonical(chain.tmp / "parent")}));
  const PageSource& source = *opened.pages;
  EXPECT_EQ(read_page(source, kA), chain.parent_pages[kA]);
  EXPECT_EQ(read_page(source, kB), chain.child_pages[kB]);
  EXPECT_EQ(read_page(source, kC), chain.child_pages[kC]);
  EXPECT_EQ(read_page(source, kD), chain.child_pages[kD]);
  EXPECT_TRUE(IsOk(eager_verify(opened)));
}

TEST(SnapshotChain, PagesWithDataIsTheUnionOfTheChain) {
  Chain chain;
  const OpenedSnapshot opened = unwrap(open_snapshot(chain.tmp / "child"));
  EXPECT_EQ(opened.pages->pages_with_data(2), 1u << 1 | 1u << 5 | 1u << 6);
  EXPECT_EQ(opened.pages->pages_with_data(9), 1u);
  EXPECT_EQ(opened.pages->pages_with_data(3), 0u);
}

TEST(SnapshotChain, TheParentAloneStillReadsItsOwnPages) {
  Chain chain;
  const OpenedSnapshot opened = unwrap(open_snapshot(chain.tmp / "parent"));
  EXPECT_EQ(read_page(*opened.pages, kB), chain.parent_pages[kB]);
  EXPECT_EQ(opened.pages->pages_with_data(2), 1u << 1 | 1u << 5);
}

TEST(SnapshotChain, AnOverriddenPageOfTheParentIsStillChecked) {
  // The parent's checksum for chunk 2 covers B too, which the child
  // overrides: a damaged B is still a damaged parent.
  Chain chain;
  flip_byte(chain.tmp / "parent" / "memory", kB * kPageSize + 100);
  const OpenedSnapshot opened = unwrap(open_snapshot(chain.tmp / "child"));
  const std::string memory = (chain.tmp / "parent" / "memory").string();
  EXPECT_TRUE(FailsWith(read_chunk(*opened.pages, 2), ErrorCode::kInvalidArgument,
                        {memory, "chunk 2 (guest-physical 0x20000): checksum mismatch"}));
  EXPECT_TRUE(FailsWith(eager_verify(opened), ErrorCode::kInvalidArgument, {memory, "chunk 2"}));
}

TEST(SnapshotChain, AThreeSnapshotChainReadsThroughEveryLevel) {
  Chain chain;
  SnapshotState state = sample_state();
  state.parent = chain.tmp / "child";
  const Pages grandchild{{kA, page_pattern(6)}};
  write(chain.tmp / "grandchild", grandchild, sample_config(), state);
  const OpenedSnapshot opened = unwrap(open_snapshot(chain.tmp / "grandchild"));
  EXPECT_EQ(opened.chain.size(), 3u);
  EXPECT_EQ(read_page(*opened.pages, kA), grandchild.at(kA));
  EXPECT_EQ(read_page(*opened.pages, kB), chain.child_pages[kB]);
  EXPECT_EQ(read_page(*opened.pages, kD), chain.child_pages[kD]);
}

TEST(SnapshotChain, ARelativeParentIsStoredAbsolute) {
  Chain chain;
  const fs::path cwd = fs::current_path();
  fs::current_path(chain.tmp.path());
  SnapshotState state = sample_state();
  state.parent = "parent";
  const Result<SnapshotWriteStats> written =
      write_snapshot("relative", sample_config(), state, walk({}));
  fs::current_path(cwd);
  ASSERT_TRUE(IsOk(written));
  const OpenedSnapshot opened = unwrap(open_snapshot(chain.tmp / "relative"));
  EXPECT_EQ(opened.state.parent, chain.tmp / "parent");
}

}  // namespace
}  // namespace vmfork::testing
