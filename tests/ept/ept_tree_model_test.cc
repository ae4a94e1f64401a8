// EptTree against a model: random sequences of map, clone, copy-on-write
// write (the single-threaded COW fault of DESIGN section 4) and release,
// checking after every step that
//   - every tree translates exactly the pages the model says, to its frames;
//   - every reference count equals the references the trees hold (one per
//     root, one per present entry of each distinct reachable table), and
//     every frame nothing references was retired exactly once;
//   - the invariant of ept_tree.h: an entry with W set, reached from a root
//     through entries that all have W set, points at a frame with one
//     reference.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "base/types.h"
#include "base/waiter.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/ept_tree.h"
#include "ept/leaf_lock.h"
#include "ept/shootdown.h"
#include "ept/table_memory.h"
#include "ept/walker.h"
#include "tests/ept/concurrency_scale.h"
#include "tests/ept/fake_table_memory.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

using ept_test::FakeTableMemory;

// Sixteen pages spread so that trees share and copy tables at every level.
std::vector<Gfn> page_set() {
  std::vector<Gfn> pages;
  for (uint64_t pml4 : {0u, 1u}) {
    for (uint64_t pdpt : {0u, 3u}) {
      for (uint64_t pd : {0u, 2u}) {
        for (uint64_t pt : {0u, 1u}) {
          pages.push_back(Gfn((pml4 << 27) | (pdpt << 18) | (pd << 9) | pt));
        }
      }
    }
  }
  return pages;
}

class EptTreeModel {
 public:
  explicit EptTreeModel(uint32_t seed) : random_(seed), pages_(page_set()) {
    trees_.push_back(Tree{tree_.create_root().value(), {}});
  }

  void run(int steps) {
    for (int step = 0; step < steps && !::testing::Test::HasFailure(); ++step) {
      SCOPED_TRACE(::testing::Message() << "step " << step);
      random_step();
      check();
    }
    for (const Tree& tree : trees_) {
      tree_.release_root(tree.root);
    }
    trees_.clear();
    check();
    // A random run that never took a branch proves nothing about it.
    EXPECT_GT(coverage_.clones, 0);
    EXPECT_GT(coverage_.releases, 0);
    EXPECT_GT(coverage_.table_copies, 0);
    EXPECT_GT(coverage_.frame_copies, 0);
    EXPECT_GT(coverage_.writes_in_place, 0);
    EXPECT_GT(coverage_.writes_already_writable, 0);
  }

 private:
  struct Coverage {
    int clones = 0;
    int releases = 0;
    int table_copies = 0;             // tables copied by unshare_path
    int frame_copies = 0;             // COW steps 4-8
    int writes_in_place = 0;          // COW step 3
    int writes_already_writable = 0;  // COW step 2
  };
  struct Tree {
    FrameId root;
    std::map<uint64_t, FrameId> pages;  // gfn -> data frame
  };

  void random_step() {
    Tree& tree = trees_[pick(trees_.size())];
    const Gfn gfn = pages_[pick(pages_.size())];
    switch (pick(8)) {
      case 0:
      case 1:
      case 2:
        if (tree.pages.count(gfn.value()) == 0) {
          map(tree, gfn);
        } else {
          write(tree, gfn);
        }
        break;
      case 3:
      case 4:
        if (tree.pages.count(gfn.value()) != 0) {
          write(tree, gfn);
        }
        break;
      case 5:
      case 6:
        if (trees_.size() < 5) {
          clone(tree);
        }
        break;
      default:
        if (trees_.size() > 1) {
          release(tree);
        }
        break;
    }
  }

  void map(Tree& tree, Gfn gfn) {
    const FrameId data = memory_.allocate_data().value();
    ASSERT_TRUE(tree_.map(tree.root, gfn, data, Access::kAll, waiter_).ok());
    tree.pages[gfn.value()] = data;
  }

  void clone(const Tree& tree) {
    ++coverage_.clones;
    Tree copy{tree_.clone(tree.root).value(), tree.pages};
    trees_.push_back(std::move(copy));
  }

  void release(const Tree& tree) {
    ++coverage_.releases;
    const FrameId root = tree.root;
    tree_.release_root(root);
    std::erase_if(trees_, [&](const Tree& t) { return t.root == root; });
  }

  // The COW fault of DESIGN section 4, steps 1-8, on one thread.
  void write(Tree& tree, Gfn gfn) {
    const size_t tables_before = memory_.tables_allocated();
    Result<std::atomic<uint64_t>*> slot =
        tree_.unshare_path(tree.root, gfn, MissingTables::kFail, waiter_);  // step 1
    ASSERT_TRUE(slot.ok());
    coverage_.table_copies += static_cast<int>(memory_.tables_allocated() - tables_before);
    {
      LeafLock leaf(**slot, waiter_);  // step 2
      ASSERT_TRUE(leaf.entry().present());
      ASSERT_EQ(leaf.entry().frame(), tree.pages[gfn.value()]) << "unsharing changed a leaf";
      if (leaf.entry().writable()) {
        ++coverage_.writes_already_writable;
      } else {
        const FrameId old = leaf.entry().frame();
        if (memory_.refcount(old) == 1) {
          ++coverage_.writes_in_place;
          leaf.add_permissions(Access::kWrite);  // step 3
        } else {
          ++coverage_.frame_copies;
          const FrameId copy = memory_.allocate_data().value();  // step 4
          leaf.remap_read_only(copy);                            // step 5
          ShootdownDomain nobody;                                // step 6: no vCPUs here
          ShootdownBatch invept = ShootdownBatch::single_context(nobody, Eptp::for_root(tree.root));
          leaf.make_writable(invept.wait(waiter_));                    // step 7
          tree_.release_entry(EptEntry::leaf(old, Access::kRead), 1);  // step 8
          tree.pages[gfn.value()] = copy;
        }
      }
    }
    const WalkResult result = tree_.walk(tree.root, gfn, Access::kWrite);
    ASSERT_TRUE(result.ok()) << "still not writable after the fault";
    EXPECT_EQ(result.frame, tree.pages[gfn.value()]);
    EXPECT_EQ(memory_.refcount(result.frame), 1u) << "writable but shared";
  }

  void check() {
    check_translations();
    check_reference_counts();
    for (const Tree& tree : trees_) {
      check_writable_paths(tree.root, kEptLevels, true);
    }
  }

  void check_translations() {
    for (const Tree& tree : trees_) {
      for (Gfn gfn : pages_) {
        const WalkResult result = tree_.walk(tree.root, gfn, Access::kRead);
        const auto page = tree.pages.find(gfn.value());
        if (page == tree.pages.end()) {
          EXPECT_FALSE(result.ok()) << "an unmapped page translates";
        } else {
          ASSERT_TRUE(result.ok()) << "a mapped page does not translate";
          EXPECT_EQ(result.frame, page->second);
        }
      }
    }
  }

  void check_reference_counts() {
    std::map<uint64_t, uint64_t> expected;  // frame -> references the trees hold
    std::set<uint64_t> seen_tables;
    for (const Tree& tree : trees_) {
      ++expected[tree.root.index()];
      count_references(tree.root, kEptLevels, seen_tables, expected);
    }
    for (FrameId frame : memory_.allocated_frames()) {
      SCOPED_TRACE(::testing::Message() << "frame " << frame.index());
      const auto held = expected.find(frame.index());
      if (held != expected.end()) {
        EXPECT_EQ(memory_.refcount(frame), held->second);
        EXPECT_EQ(memory_.times_retired(frame), 0u) << "retired while referenced";
      } else {
        EXPECT_EQ(memory_.refcount(frame), 0u) << "leaked";
        EXPECT_EQ(memory_.times_retired(frame), 1u) << "unreferenced, not retired exactly once";
      }
    }
  }

  void count_references(FrameId table, int level, std::set<uint64_t>& seen,
                        std::map<uint64_t, uint64_t>& expected) {
    if (!seen.insert(table.index()).second) {
      return;  // a shared table counts once
    }
    for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
      const EptEntry entry(memory_.entries(table)[i].load());
      if (!entry.present()) {
        continue;
      }
      ++expected[entry.frame().index()];
      if (level > 1) {
        count_references(entry.frame(), level - 1, seen, expected);
      }
    }
  }

  void check_writable_paths(FrameId table, int level, bool writable_so_far) {
    for (uint64_t i = 0; i < kEptEntriesPerTable; ++i) {
      const EptEntry entry(memory_.entries(table)[i].load());
      if (!entry.present()) {
        continue;
      }
      EXPECT_FALSE(entry.locked()) << "a leaf lock was left held";
      const bool writable = writable_so_far && entry.writable();
      if (writable) {
        EXPECT_EQ(memory_.refcount(entry.frame()), 1u)
            << "W on an all-W path to a shared frame, level " << level << " index " << i;
      }
      if (level > 1) {
        check_writable_paths(entry.frame(), level - 1, writable);
      }
    }
  }

  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random_); }

  std::mt19937 random_;
  const std::vector<Gfn> pages_;
  FakeTableMemory memory_{4096};
  EptTree tree_{memory_};
  HostWaiter waiter_;
  std::vector<Tree> trees_;
  Coverage coverage_;
};

TEST(EptTreeModelTest, RandomMapCloneWriteReleaseKeepsTranslationsAndReferenceCounts) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    EptTreeModel model(seed);
    model.run(ept_test::kUnderSanitizer ? 120 : 250);
    if (HasFailure()) {
      return;  // one failing seed is enough to read
    }
  }
}

}  // namespace
}  // namespace vmfork
