// A snapshot written and opened again gives back what was written: the
// configuration, every vCPU field (engine blob included), the requester, and
// each stored page at its guest-physical offset; everything else is a hole.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "tests/snapshot/snapshot_test_support.h"
#include "vmm/snapshot/state_file.h"

namespace vmfork::testing {
namespace {

// Chunk 0's first and last page, two pages of a middle chunk, and the last
// page of RAM (4 MiB: 64 chunks).
Pages scattered_pages() {
  Pages pages;
  for (const uint64_t gfn : {0ul, 15ul, 16ul * 7 + 3, 16ul * 7 + 4, 16ul * 40 + 9, 1023ul}) {
    pages[gfn] = page_pattern(gfn + 1);
  }
  return pages;
}

TEST(SnapshotRoundTrip, ConfigComesBackAsWritten) {
  TempDir tmp;
  write(tmp / "s", scattered_pages());
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  EXPECT_EQ(opened.config, sample_config());
  EXPECT_EQ(opened.dir, tmp / "s");
  EXPECT_EQ(opened.chain, std::vector<fs::path>{fs::canonical(tmp / "s")});
}

TEST(SnapshotRoundTrip, EveryVcpuFieldComesBackIncludingTheEngineBlob) {
  TempDir tmp;
  write(tmp / "s", scattered_pages());
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  const SnapshotState expected = sample_state();
  ASSERT_EQ(opened.state.vcpus.size(), expected.vcpus.size());
  for (size_t i = 0; i < expected.vcpus.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "vCPU " << i);
    const CpuState& got = opened.state.vcpus[i].cpu;
    const CpuState& want = expected.vcpus[i].cpu;
    EXPECT_EQ(got.regs, want.regs);
    EXPECT_EQ(got.segments.cs, want.segments.cs);
    EXPECT_EQ(got.segments.tr, want.segments.tr);
    EXPECT_EQ(got.segments.ldt, want.segments.ldt);
    EXPECT_EQ(got.segments, want.segments);
    EXPECT_EQ(got.control, want.control);
    EXPECT_EQ(got.msrs, want.msrs);
    EXPECT_EQ(got.tsc_offset, want.tsc_offset);
    EXPECT_EQ(got.fpu.engine, want.fpu.engine);
    EXPECT_EQ(got.fpu.bytes, want.fpu.bytes);
    EXPECT_EQ(got, want);  // and nothing the fields above forgot
    EXPECT_EQ(opened.state.vcpus[i].halted, expected.vcpus[i].halted);
  }
  EXPECT_EQ(opened.state.requester, expected.requester);
  EXPECT_EQ(opened.state.parent, std::nullopt);
}

TEST(SnapshotRoundTrip, ASnapshotTakenFromOutsideHasNoRequester) {
  TempDir tmp;
  SnapshotState state = sample_state();
  state.requester.reset();
  state.vcpus[0].cpu.fpu = {};  // no blob at all
  write(tmp / "s", {}, sample_config(), state);
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  EXPECT_EQ(opened.state.requester, std::nullopt);
  EXPECT_EQ(opened.state.vcpus[0].cpu.fpu, EngineBlob{});
}

TEST(SnapshotRoundTrip, StoredPagesReadBackAndPagesWithDataIsTheirMask) {
  TempDir tmp;
  const Pages pages = scattered_pages();
  const SnapshotWriteStats stats = write(tmp / "s", pages);
  EXPECT_EQ(stats.pages_written, pages.size());
  EXPECT_EQ(stats.chunks, 4u);
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  const PageSource& source = *opened.pages;
  EXPECT_EQ(source.ram_bytes(), 4 * kMiB);
  EXPECT_EQ(source.pages_with_data(0), 0x8001);
  EXPECT_EQ(source.pages_with_data(7), 0x0018);
  EXPECT_EQ(source.pages_with_data(40), 0x0200);
  EXPECT_EQ(source.pages_with_data(63), 0x8000);
  for (uint64_t chunk = 0; chunk < 64; ++chunk) {
    if (chunk == 0 || chunk == 7 || chunk == 40 || chunk == 63) continue;
    EXPECT_EQ(source.pages_with_data(chunk), 0) << "chunk " << chunk;
  }
  EXPECT_EQ(source.pages_with_data(64), 0);  // past the end: nothing
  for (const auto& [gfn, bytes] : pages) {
    EXPECT_EQ(read_page(source, gfn), bytes) << "gfn " << gfn;
  }
  EXPECT_TRUE(IsOk(eager_verify(opened)));
}

TEST(SnapshotRoundTrip, ReadChunkLeavesPagesWithoutDataAlone) {
  TempDir tmp;
  write(tmp / "s", scattered_pages());
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  const auto chunk = unwrap(read_chunk(*opened.pages, 7));
  for (uint64_t i = 0; i < kChunkPages; ++i) {
    EXPECT_EQ(chunk[i].empty(), i != 3 && i != 4) << "page " << i;
  }
}

TEST(SnapshotRoundTrip, MemoryIsASparseFileOfRamBytesWithPagesAtTheirOffsets) {
  TempDir tmp;
  const Pages pages = scattered_pages();
  write(tmp / "s", pages);
  const std::string memory = read_text(tmp / "s" / "memory");
  ASSERT_EQ(memory.size(), 4 * kMiB);
  for (uint64_t gfn = 0; gfn < 1024; ++gfn) {
    const auto stored = pages.find(gfn);
    const std::string page = memory.substr(gfn * kPageSize, kPageSize);
    if (stored == pages.end()) {
      EXPECT_EQ(page, std::string(kPageSize, '\0')) << "hole at gfn " << gfn;
    } else {
      EXPECT_EQ(page, std::string(reinterpret_cast<const char*>(stored->second.data()), kPageSize))
          << "gfn " << gfn;
    }
  }
  struct stat info {};
  ASSERT_EQ(::stat((tmp / "s" / "memory").c_str(), &info), 0);
  // Holes take no blocks (a file system without holes would fail here).
  EXPECT_LT(static_cast<uint64_t>(info.st_blocks) * 512, 1 * kMiB);
}

TEST(SnapshotRoundTrip, ConfigJsonIsWhatTheUserSetReadable) {
  TempDir tmp;
  write(tmp / "s", {});
  const nlohmann::json config = nlohmann::json::parse(read_text(tmp / "s" / "config.json"));
  EXPECT_EQ(config, (nlohmann::json{{"vcpus", 2},
                                    {"ram_bytes", 4 * kMiB},
                                    {"guest", "/guests/hello.elf"},
                                    {"engine", "kvm"},
                                    {"platform", "freestanding"}}));
}

TEST(SnapshotRoundTrip, StateJsonDescribesTheMemoryFile) {
  TempDir tmp;
  write(tmp / "s", scattered_pages());
  const nlohmann::json state = nlohmann::json::parse(read_text(tmp / "s" / "state.json"));
  EXPECT_EQ(state["format_version"], 1);
  EXPECT_EQ(state["devices"], (nlohmann::json{{"console", nlohmann::json::object()}}));
  const nlohmann::json& memory = state["memory"];
  EXPECT_EQ(memory["file"], "memory");
  EXPECT_EQ(memory["size"], 4 * kMiB);
  EXPECT_EQ(memory["chunk_bytes"], 64 * 1024);
  const nlohmann::json& table = memory["chunk_table"];
  EXPECT_EQ(table["file"], "memory.chunks");
  EXPECT_EQ(table["stored_chunks"], 4);
  EXPECT_EQ(fs::file_size(tmp / "s" / "memory.chunks"), 64u * 16);  // 4 MiB: 64 chunks
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  EXPECT_EQ(opened.pages->pages_with_data(7), 0x18);
}

}  // namespace
}  // namespace vmfork::testing
