// vmm/vm/journal: offsets that count every byte ever appended, reads from a
// dropped offset, followers that see kept bytes then every append exactly
// once and in order, unfollow, and close. The follow race runs an appender
// thread against followers joining at a barrier.
#include "vmm/vm/journal.h"

#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace vmfork {
namespace {

TEST(JournalTest, ReadReturnsBytesFromAnOffsetAndWhereTheNextReadStarts) {
  Journal journal(64);
  journal.append("hello ");
  journal.append("world");
  const Journal::Read all = journal.read(0, 100);
  EXPECT_EQ(all.bytes, "hello world");
  EXPECT_EQ(all.from, 0u);
  EXPECT_EQ(all.next, 11u);
  EXPECT_FALSE(all.closed);
  const Journal::Read tail = journal.read(6, 3);
  EXPECT_EQ(tail.bytes, "wor");
  EXPECT_EQ(tail.from, 6u);
  EXPECT_EQ(tail.next, 9u);
}

TEST(JournalTest, ReadPastTheEndReturnsNothingAtTheEnd) {
  Journal journal(64);
  journal.append("abc");
  const Journal::Read read = journal.read(100, 10);
  EXPECT_EQ(read.bytes, "");
  EXPECT_EQ(read.from, 3u);
  EXPECT_EQ(read.next, 3u);
}

TEST(JournalTest, OffsetsCountDroppedBytes) {
  Journal journal(4);
  journal.append("0123");
  journal.append("4567");
  journal.append("89");
  const Journal::Read read = journal.read(8, 10);
  EXPECT_EQ(read.bytes, "89");
  EXPECT_EQ(read.from, 8u);
  EXPECT_EQ(read.next, 10u);
}

TEST(JournalTest, ReadFromADroppedOffsetReturnsTheOldestKeptBytesAndSaysWhereTheyStart) {
  Journal journal(4);
  journal.append("0123456789");
  const Journal::Read read = journal.read(2, 10);
  EXPECT_EQ(read.bytes, "6789");
  EXPECT_EQ(read.from, 6u);
  EXPECT_EQ(read.next, 10u);
}

TEST(JournalTest, FollowFromAnOffsetDeliversKeptBytesThenAppends) {
  Journal journal(64);
  journal.append("abc");
  std::string seen;
  journal.follow(
      1, [&seen](std::string_view bytes) { seen += bytes; }, [] {});
  journal.append("def");
  EXPECT_EQ(seen, "bcdef");
}

TEST(JournalTest, FollowWithoutAnOffsetDeliversOnlyNewAppends) {
  Journal journal(64);
  journal.append("old");
  std::string seen;
  journal.follow(
      std::nullopt, [&seen](std::string_view bytes) { seen += bytes; }, [] {});
  journal.append("new");
  EXPECT_EQ(seen, "new");
}

TEST(JournalTest, FollowFromADroppedOffsetStartsAtTheOldestKeptByte) {
  Journal journal(4);
  journal.append("0123456789");
  std::string seen;
  journal.follow(
      0, [&seen](std::string_view bytes) { seen += bytes; }, [] {});
  EXPECT_EQ(seen, "6789");
}

TEST(JournalTest, UnfollowStopsCallbacks) {
  Journal journal(64);
  std::string seen;
  int closes = 0;
  const uint64_t id = journal.follow(
      0, [&seen](std::string_view bytes) { seen += bytes; }, [&closes] { ++closes; });
  journal.append("a");
  journal.unfollow(id);
  journal.append("b");
  journal.close();
  EXPECT_EQ(seen, "a");
  EXPECT_EQ(closes, 0);
}

TEST(JournalTest, CloseCallsOnCloseOnceAndIgnoresLaterAppends) {
  Journal journal(64);
  std::string seen;
  int closes = 0;
  journal.follow(
      0, [&seen](std::string_view bytes) { seen += bytes; }, [&closes] { ++closes; });
  journal.append("a");
  journal.close();
  journal.close();
  journal.append("b");
  EXPECT_EQ(closes, 1);
  EXPECT_EQ(seen, "a");
  EXPECT_TRUE(journal.read(0, 10).closed);
  EXPECT_EQ(journal.read(0, 10).bytes, "a");
}

TEST(JournalTest, FollowAfterCloseDeliversKeptBytesAndClosesAtOnce) {
  Journal journal(64);
  journal.append("kept");
  journal.close();
  std::string seen;
  int closes = 0;
  journal.follow(
      0, [&seen](std::string_view bytes) { seen += bytes; }, [&closes] { ++closes; });
  EXPECT_EQ(seen, "kept");
  EXPECT_EQ(closes, 1);
  journal.close();
  EXPECT_EQ(closes, 1);
}

// Each append is one decimal number and a newline; a follower that joins
// while they are appended must see, from where it joined, each number once,
// consecutive, up to the last.
TEST(JournalTest, FollowDuringAppendsSeesEveryAppendOnceInOrderWithNoGap) {
  constexpr int kAppends = 20000;
  constexpr size_t kFollowers = 4;
  for (int round = 0; round < 5; ++round) {
    Journal journal(1 << 20);  // keeps everything: a follower from 0 sees all
    std::barrier start(static_cast<std::ptrdiff_t>(kFollowers) + 1);
    std::vector<std::string> seen(kFollowers);
    std::vector<std::thread> threads;
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kAppends; ++i)
        journal.append(std::to_string(i) + "\n");
      journal.close();
    });
    std::vector<std::atomic<int>> closes(kFollowers);
    for (size_t f = 0; f < kFollowers; ++f) {
      threads.emplace_back([&, f] {
        start.arrive_and_wait();
        // Half follow from 0 (all kept), half from the current end.
        std::optional<uint64_t> from;
        if (f % 2 == 0) {
          from = 0;
        } else {
          from = journal.read(UINT64_MAX, 0).next;
        }
        journal.follow(
            from, [&seen, f](std::string_view bytes) { seen[f] += bytes; },
            [&closes, f] { closes[f].fetch_add(1); });
      });
    }
    for (std::thread& thread : threads)
      thread.join();
    for (size_t f = 0; f < kFollowers; ++f) {
      EXPECT_EQ(closes[f].load(), 1) << "follower " << f;
      const std::string& text = seen[f];
      if (f % 2 == 0) {
        ASSERT_FALSE(text.empty());
        EXPECT_EQ(text.substr(0, 2), "0\n") << "follower " << f << " from 0 missed the start";
      }
      if (text.empty()) continue;  // joined after the close with nothing after its offset
      // An offset read from the journal is at an append's border: whole lines.
      size_t pos = 0;
      int expected = -1;
      while (pos < text.size()) {
        const size_t end = text.find('\n', pos);
        ASSERT_NE(end, std::string::npos) << "follower " << f << ": a torn line at the end";
        const int value = std::stoi(text.substr(pos, end - pos));
        if (expected >= 0) {
          ASSERT_EQ(value, expected) << "follower " << f << ": gap or repeat";
        }
        expected = value + 1;
        pos = end + 1;
      }
      EXPECT_EQ(expected, kAppends) << "follower " << f << " missed the last appends";
    }
  }
}

}  // namespace
}  // namespace vmfork
