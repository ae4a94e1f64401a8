// open_snapshot refuses a damaged or inconsistent snapshot before a restore
// starts, naming the file and the field; a damaged memory page is found when
// its chunk is read (or by eager_verify).
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/snapshot/snapshot_test_support.h"

namespace vmfork::testing {
namespace {

using nlohmann::json;
constexpr ErrorCode kInvalid = ErrorCode::kInvalidArgument;

class SnapshotRefusals : public ::testing::Test {
 protected:
  SnapshotRefusals() { write(dir(), pages_); }
  // A good snapshot again, for the next case of a test.
  void rewrite() {
    fs::remove_all(dir());
    write(dir(), pages_);
  }
  fs::path dir() const { return tmp_ / "s"; }
  std::string file(const char* name) const { return (dir() / name).string(); }

  TempDir tmp_;
  Pages pages_{
      {3, page_pattern(1)}, {16 * 12 + 2, page_pattern(2)}, {16 * 12 + 9, page_pattern(3)}};
};

TEST_F(SnapshotRefusals, MissingDirectory) {
  EXPECT_TRUE(FailsWith(open_snapshot(tmp_ / "nothing"), kInvalid, {(tmp_ / "nothing").string()}));
}

TEST_F(SnapshotRefusals, MissingConfigJson) {
  fs::remove(dir() / "config.json");
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), ErrorCode::kSystem, {file("config.json"), "No such file"}));
}

TEST_F(SnapshotRefusals, MissingStateJson) {
  fs::remove(dir() / "state.json");
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), ErrorCode::kSystem, {file("state.json"), "No such file"}));
}

TEST_F(SnapshotRefusals, MissingMemory) {
  fs::remove(dir() / "memory");
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), ErrorCode::kSystem, {file("memory"), "No such file"}));
}

TEST_F(SnapshotRefusals, TruncatedMemory) {
  fs::resize_file(dir() / "memory", 1 * kMiB);
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), kInvalid,
                {file("memory") + ": 1048576 bytes, state.json says 4194304 (truncated?)"}));
}

TEST_F(SnapshotRefusals, AFlippedByteInMemoryIsFoundOnReadNotOnOpen) {
  flip_byte(dir() / "memory", (16 * 12 + 9) * kPageSize + 7);
  const OpenedSnapshot opened = unwrap(open_snapshot(dir()));
  EXPECT_TRUE(
      FailsWith(read_chunk(*opened.pages, 12), kInvalid,
                {file("memory") + ": chunk 12 (guest-physical 0xc0000): checksum mismatch"}));
  EXPECT_TRUE(IsOk(read_chunk(*opened.pages, 0)));  // other chunks still read
  EXPECT_TRUE(FailsWith(eager_verify(opened), kInvalid, {file("memory"), "chunk 12"}));
}

TEST_F(SnapshotRefusals, AByteWrittenIntoAHoleIsNotChecked) {
  // Holes are not part of any checksum: a stray write there is not seen,
  // and the page still reads as zero, since it has no data.
  flip_byte(dir() / "memory", 5 * kPageSize);
  const OpenedSnapshot opened = unwrap(open_snapshot(dir()));
  EXPECT_TRUE(IsOk(eager_verify(opened)));
  EXPECT_EQ(opened.pages->pages_with_data(0), 1u << 3);
}

TEST_F(SnapshotRefusals, AFlippedByteInConfigJson) {
  std::string text = read_text(dir() / "config.json");
  const size_t vcpus = text.find("\"vcpus\": 2");
  ASSERT_NE(vcpus, std::string::npos);
  text[vcpus + 9] = '3';  // still valid JSON, still a valid configuration
  write_text(dir() / "config.json", text);
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("config.json") + ": checksum", "config_checksum", "damaged"}));
  flip_byte(dir() / "config.json", 0);  // '{' no longer
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid, {file("config.json")}));
}

TEST_F(SnapshotRefusals, AFlippedByteInStateJson) {
  std::string text = read_text(dir() / "state.json");
  const size_t rip = text.find("\"rip\": 1048577");  // vCPU 1's, 0x100001
  ASSERT_NE(rip, std::string::npos);
  text[rip + 13] = '8';  // its last digit: still valid JSON, still a valid state
  write_text(dir() / "state.json", text);
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": checksum: ", "does not match", "damaged"}));
  flip_byte(dir() / "state.json", text.size() / 2);
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid, {file("state.json")}));
}

TEST_F(SnapshotRefusals, UnknownFormatVersion) {
  edit_state(dir(), [](json& state) { state["format_version"] = 7; });
  EXPECT_TRUE(FailsWith(
      open_snapshot(dir()), kInvalid,
      {file("state.json") + ": format_version 7 is not supported (this vmfork reads 1)"}));
}

TEST_F(SnapshotRefusals, RamNotAMultipleOf2MiB) {
  edit_config(dir(), [](json& config) { config["ram_bytes"] = 3 * kMiB; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("config.json") + ": ram_bytes: ", "multiple of 2 MiB"}));
  edit_state(dir(), [](json& state) { state["layout"]["ram_bytes"] = 3 * kMiB; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": layout: ram_bytes: ", "multiple of 2 MiB"}));
}

TEST_F(SnapshotRefusals, ConfigAndStateDisagreeOnRam) {
  edit_config(dir(), [](json& config) { config["ram_bytes"] = 8 * kMiB; });
  EXPECT_TRUE(FailsWith(
      open_snapshot(dir()), kInvalid,
      {file("state.json") + ": layout.ram_bytes: 4194304", file("config.json"), "8388608"}));
}

TEST_F(SnapshotRefusals, VcpuCountMismatch) {
  edit_config(dir(), [](json& config) { config["vcpus"] = 3; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": layout.vcpus: 2", file("config.json")}));
  edit_state(dir(), [](json& state) { state["layout"]["vcpus"] = 3; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": vcpus: 2 vCPU states, the layout says 3"}));
}

TEST_F(SnapshotRefusals, VcpuCountOutOfRange) {
  edit_config(dir(), [](json& config) { config["vcpus"] = 0; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid, {file("config.json") + ": vcpus: 0"}));
}

TEST_F(SnapshotRefusals, RequesterOutOfRange) {
  edit_state(dir(), [](json& state) { state["requester"] = 2; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": requester: 2 is not a vCPU (there are 2)"}));
}

TEST_F(SnapshotRefusals, WrongJsonTypeForAField) {
  edit_state(dir(), [](json& state) { state["vcpus"][1]["regs"]["rip"] = "0x100001"; });
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), kInvalid,
                {file("state.json") + ": vcpus[1].regs.rip: expected an unsigned integer"}));
  edit_state(dir(), [](json& state) { state["vcpus"][1]["regs"]["rip"] = -1; });
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), kInvalid,
                {file("state.json") + ": vcpus[1].regs.rip: expected an unsigned integer"}));
  edit_state(dir(), [](json& state) {
    state["vcpus"][1]["regs"]["rip"] = 1;
    state["vcpus"][0]["segments"]["tr"]["present"] = 1;
  });
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), kInvalid,
                {file("state.json") + ": vcpus[0].segments.tr.present: expected true or false"}));
  rewrite();
  edit_config(dir(), [](json& config) { config["engine"] = "qemu"; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid, {file("config.json") + ": engine: "}));
}

TEST_F(SnapshotRefusals, AFieldOutOfItsRange) {
  edit_state(dir(), [](json& state) { state["vcpus"][0]["segments"]["cs"]["dpl"] = 4; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": vcpus[0].segments.cs.dpl: 4 is out of range"}));
}

TEST_F(SnapshotRefusals, AMissingField) {
  edit_state(dir(), [](json& state) { state["vcpus"][1]["msrs"][1].erase("value"); });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": vcpus[1].msrs[1].value: missing"}));
  rewrite();
  edit_state(dir(), [](json& state) { state.erase("parent"); });
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), kInvalid, {file("state.json") + ": parent: missing"}));
}

TEST_F(SnapshotRefusals, MissingChunkTable) {
  fs::remove(dir() / "memory.chunks");
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), ErrorCode::kSystem, {file("memory.chunks"), "No such file"}));
}

TEST_F(SnapshotRefusals, TruncatedChunkTable) {
  fs::resize_file(dir() / "memory.chunks", 16 * 10);
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("memory.chunks") + ": 160 bytes, 1024 expected for 64 chunks"}));
}

TEST_F(SnapshotRefusals, AChangedChunkTableIsRefused) {
  // Chunk 12's page mask: the table no longer matches state.json.
  flip_byte(dir() / "memory.chunks", 12 * 16 + 8);
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("memory.chunks") + ": checksum", file("state.json"),
                         "memory.chunk_table", "changed or damaged"}));
}

TEST_F(SnapshotRefusals, BadChunkTableEntries) {
  edit_state(dir(), [](json& state) { state["memory"]["chunk_table"]["stored_pages"] = 4; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("memory.chunks") + ": 2 chunks of 3 pages", "says 2 of 4"}));
  rewrite();
  edit_state(dir(), [](json& state) { state["memory"]["chunk_table"]["file"] = "other"; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": memory.chunk_table.file"}));
  rewrite();
  edit_state(dir(), [](json& state) { state["memory"]["chunk_table"].erase("checksum"); });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": memory.chunk_table.checksum: missing"}));
}

TEST_F(SnapshotRefusals, AMissingParent) {
  edit_state(dir(), [&](json& state) { set_parent(state, tmp_ / "gone"); });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": parent: " + (tmp_ / "gone").string(),
                         "no such snapshot directory"}));
}

TEST_F(SnapshotRefusals, ARelativeParent) {
  edit_state(dir(), [](json& state) { state["parent"] = "elsewhere"; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": parent: \"elsewhere\" is not an absolute path"}));
}

TEST_F(SnapshotRefusals, AParentChainWithALoop) {
  // a <- b, then a's parent made b: a -> b -> a.
  SnapshotState state = sample_state();
  state.parent = dir();
  write(tmp_ / "b", {}, sample_config(), state);
  edit_state(dir(), [&](json& a) { set_parent(a, tmp_ / "b"); });
  // b records a as it is now (a's record of b cannot be right as well: each
  // checksum would cover the other).
  edit_state(tmp_ / "b", [&](json& b) { set_parent(b, dir()); });
  EXPECT_TRUE(FailsWith(
      open_snapshot(tmp_ / "b"), kInvalid,
      {file("state.json") + ": parent: " + (tmp_ / "b").string(), "already in the chain (a loop"}));
  // A snapshot that is its own parent.
  edit_state(dir(), [&](json& a) { set_parent(a, dir()); });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid, {"a loop"}));
}

TEST_F(SnapshotRefusals, AParentWithDifferentRam) {
  write(tmp_ / "big", {}, sample_config(2, 8 * kMiB));
  edit_state(dir(), [&](json& state) { set_parent(state, tmp_ / "big"); });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": parent: " + (tmp_ / "big").string(),
                         "has ram_bytes 8388608, this chain 4194304"}));
}

TEST_F(SnapshotRefusals, AParentWithDifferentVcpus) {
  write(tmp_ / "one", {}, sample_config(1), sample_state(1));
  edit_state(dir(), [&](json& state) { set_parent(state, tmp_ / "one"); });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": parent: ", "has 1 vCPUs, this chain 2"}));
}

TEST_F(SnapshotRefusals, ADamagedParentIsNamed) {
  SnapshotState state = sample_state();
  state.parent = dir();
  write(tmp_ / "child", {}, sample_config(), state);
  fs::remove(dir() / "memory");
  EXPECT_TRUE(FailsWith(open_snapshot(tmp_ / "child"), ErrorCode::kSystem, {file("memory")}));
}

TEST_F(SnapshotRefusals, AReplacedParentIsRefused) {
  SnapshotState state = sample_state();
  state.parent = dir();
  write(tmp_ / "child", {}, sample_config(), state);
  ASSERT_TRUE(IsOk(open_snapshot(tmp_ / "child")));
  // Another snapshot of the same shape where the parent was.
  fs::remove_all(dir());
  write(dir(), {{5, page_pattern(9)}});
  EXPECT_TRUE(FailsWith(open_snapshot(tmp_ / "child"), kInvalid,
                        {(tmp_ / "child" / "state.json").string() + ": parent_checksum: ",
                         file("state.json"), "replaced or changed"}));
}

TEST_F(SnapshotRefusals, AParentChecksumGoesWithAParent) {
  edit_state(dir(), [](json& state) { state["parent_checksum"] = "0x0000000000000001"; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": parent_checksum: set, but there is no parent"}));
  rewrite();
  edit_state(dir(), [&](json& state) { state["parent"] = (tmp_ / "p").string(); });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": parent_checksum: missing"}));
}

TEST_F(SnapshotRefusals, OpeningWritesNothing) {
  const auto before = fs::last_write_time(dir() / "state.json");
  std::vector<fs::path> listing;
  for (const auto& entry : fs::directory_iterator(dir()))
    listing.push_back(entry.path());
  ASSERT_TRUE(IsOk(open_snapshot(dir())));
  std::vector<fs::path> after;
  for (const auto& entry : fs::directory_iterator(dir()))
    after.push_back(entry.path());
  EXPECT_EQ(listing, after);
  EXPECT_EQ(fs::last_write_time(dir() / "state.json"), before);
}

}  // namespace
}  // namespace vmfork::testing
