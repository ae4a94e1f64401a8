// write_snapshot writes a new or empty directory, all or nothing: a refused
// or failed write leaves the target as it was and no temporary behind.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/snapshot/snapshot_test_support.h"

namespace vmfork::testing {
namespace {

std::vector<fs::path> listing(const fs::path& dir) {
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(dir))
    entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end());
  return entries;
}

TEST(SnapshotWrite, AnEmptyDirectoryIsFilled) {
  TempDir tmp;
  fs::create_directory(tmp / "s");
  write(tmp / "s", {{5, page_pattern(5)}});
  EXPECT_EQ(listing(tmp / "s"),
            (std::vector<fs::path>{tmp / "s" / "config.json", tmp / "s" / "memory",
                                   tmp / "s" / "memory.chunks", tmp / "s" / "state.json"}));
  EXPECT_EQ(listing(tmp.path()), std::vector<fs::path>{tmp / "s"});  // no temporary left
}

TEST(SnapshotWrite, ATrailingSeparatorNamesTheSameDirectory) {
  TempDir tmp;
  write((tmp / "s").string() + "/", {});
  EXPECT_TRUE(IsOk(open_snapshot(tmp / "s")));
}

TEST(SnapshotWrite, ANonEmptyDirectoryIsRefusedAndLeftUntouched) {
  TempDir tmp;
  fs::create_directory(tmp / "s");
  write_text(tmp / "s" / "notes.txt", "mine");
  const Result<SnapshotWriteStats> written =
      write_snapshot(tmp / "s", sample_config(), sample_state(), walk({{1, page_pattern(1)}}));
  EXPECT_TRUE(FailsWith(written, ErrorCode::kInvalidArgument, {(tmp / "s").string(), "not empty"}));
  EXPECT_EQ(listing(tmp / "s"), std::vector<fs::path>{tmp / "s" / "notes.txt"});
  EXPECT_EQ(read_text(tmp / "s" / "notes.txt"), "mine");
  EXPECT_EQ(listing(tmp.path()), std::vector<fs::path>{tmp / "s"});
}

TEST(SnapshotWrite, AFileInTheWayIsRefused) {
  TempDir tmp;
  write_text(tmp / "s", "a file");
  EXPECT_TRUE(FailsWith(write_snapshot(tmp / "s", sample_config(), sample_state(), walk({})),
                        ErrorCode::kInvalidArgument, {(tmp / "s").string(), "not a directory"}));
  EXPECT_EQ(read_text(tmp / "s"), "a file");
}

TEST(SnapshotWrite, AFailingWalkLeavesNoDirectory) {
  TempDir tmp;
  const PageWalk failing = [](const PageVisitor& visit) -> Result<void> {
    const std::vector<std::byte> page = page_pattern(1);
    if (Result<void> visited = visit(Gfn(1), page.data()); !visited.ok()) return visited;
    return make_error(ErrorCode::kSystem, "the guest memory went away");
  };
  EXPECT_TRUE(FailsWith(write_snapshot(tmp / "s", sample_config(), sample_state(), failing),
                        ErrorCode::kSystem, {"the guest memory went away"}));
  EXPECT_TRUE(listing(tmp.path()).empty());
}

TEST(SnapshotWrite, AFailingWalkLeavesAnEmptyTargetEmpty) {
  TempDir tmp;
  fs::create_directory(tmp / "s");
  const PageWalk failing = [](const PageVisitor&) -> Result<void> {
    return make_error(ErrorCode::kSystem, "no");
  };
  EXPECT_FALSE(write_snapshot(tmp / "s", sample_config(), sample_state(), failing).ok());
  EXPECT_EQ(listing(tmp.path()), std::vector<fs::path>{tmp / "s"});
  EXPECT_TRUE(listing(tmp / "s").empty());
}

TEST(SnapshotWrite, PagesOutOfOrderOrPastRamAreRefused) {
  TempDir tmp;
  const std::vector<std::byte> page = page_pattern(1);
  const PageWalk backwards = [&page](const PageVisitor& visit) -> Result<void> {
    if (Result<void> visited = visit(Gfn(9), page.data()); !visited.ok()) return visited;
    return visit(Gfn(8), page.data());
  };
  EXPECT_TRUE(FailsWith(write_snapshot(tmp / "s", sample_config(), sample_state(), backwards),
                        ErrorCode::kInvalidArgument, {"gfn 8 after 9"}));
  const PageWalk past_ram = [&page](const PageVisitor& visit) -> Result<void> {
    return visit(Gfn(1024), page.data());  // 4 MiB is gfns 0..1023
  };
  EXPECT_TRUE(FailsWith(write_snapshot(tmp / "s", sample_config(), sample_state(), past_ram),
                        ErrorCode::kInvalidArgument, {"gfn 1024, past the end of RAM"}));
  EXPECT_TRUE(listing(tmp.path()).empty());
}

TEST(SnapshotWrite, AnInconsistentStateIsRefusedBeforeAnythingIsWritten) {
  TempDir tmp;
  EXPECT_TRUE(FailsWith(write_snapshot(tmp / "s", sample_config(3), sample_state(2), walk({})),
                        ErrorCode::kInvalidArgument, {"2 vCPU states for 3 vCPUs"}));
  SnapshotState state = sample_state();
  state.requester = 2;
  EXPECT_TRUE(FailsWith(write_snapshot(tmp / "s", sample_config(), state, walk({})),
                        ErrorCode::kInvalidArgument, {"requester 2"}));
  EXPECT_TRUE(
      FailsWith(write_snapshot(tmp / "s", sample_config(2, 3 * kMiB), sample_state(), walk({})),
                ErrorCode::kInvalidArgument, {"ram_bytes", "multiple of 2 MiB"}));
  EXPECT_TRUE(listing(tmp.path()).empty());
}

TEST(SnapshotWrite, AGuestPathThatIsNotUtf8IsRefused) {
  TempDir tmp;
  SnapshotConfig config = sample_config();
  config.guest = "/guests/\xff.elf";  // a Linux path may be any bytes, a JSON string may not
  EXPECT_TRUE(FailsWith(write_snapshot(tmp / "s", config, sample_state(), walk({})),
                        ErrorCode::kInvalidArgument, {"guest is not valid UTF-8"}));
  EXPECT_TRUE(listing(tmp.path()).empty());
}

TEST(SnapshotWrite, AMissingParentDirectoryOfTheTargetIsAnError) {
  TempDir tmp;
  EXPECT_TRUE(FailsWith(write_snapshot(tmp / "no" / "s", sample_config(), sample_state(), walk({})),
                        ErrorCode::kSystem, {(tmp / "no").string()}));
}

TEST(SnapshotWrite, StatsCountWhatWasWritten) {
  TempDir tmp;
  const SnapshotWriteStats stats =
      write(tmp / "s", {{1, page_pattern(1)}, {2, page_pattern(2)}, {40, page_pattern(3)}});
  EXPECT_EQ(stats.pages_written, 3u);
  EXPECT_EQ(stats.chunks, 2u);
  EXPECT_EQ(stats.bytes_written, 3 * kPageSize + fs::file_size(tmp / "s" / "state.json") +
                                     fs::file_size(tmp / "s" / "config.json"));
  EXPECT_GE(stats.write_ns, stats.sync_ns);
}

}  // namespace
}  // namespace vmfork::testing
