// `vmfork run --snapshot` and `vmfork restore` as a user runs them, on the
// soft engine: the guests check their own memory and clone ids; these tests
// check what the user sees (console lines, exit statuses, messages) and that
// a refused restore leaves the snapshot directory as it was. No timings.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <xxhash.h>
#include <nlohmann/json.hpp>

#include "tests/support/text_lines.h"

namespace {

namespace fs = std::filesystem;

struct ProcessRun {
  int exit_status = -1;
  std::string out;
  std::string err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

using vmfork::testing::lines_of;

size_t count_line(const std::string& text, const std::string& line) {
  const std::vector<std::string> lines = lines_of(text);
  return static_cast<size_t>(std::count(lines.begin(), lines.end(), line));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string guest(const char* name) {
  return std::string(VMFORK_GUESTS_DIR) + "/" + name + ".elf";
}

// Every file under `dir` (relative path -> contents): equal maps mean a
// byte-identical tree.
std::map<std::string, std::string> tree_of(const fs::path& dir) {
  std::map<std::string, std::string> tree;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir)) {
    const std::string name = fs::relative(entry.path(), dir).string();
    tree[name] = entry.is_regular_file() ? read_file(entry.path()) : std::string("<dir>");
  }
  return tree;
}

nlohmann::json read_json(const fs::path& path) {
  return nlohmann::json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
}

// The pages a snapshot's memory file stores, as state.json counts them.
uint64_t stored_pages(const fs::path& snapshot) {
  const nlohmann::json state = read_json(snapshot / "state.json");
  return state["memory"]["chunk_table"]["stored_pages"].get<uint64_t>();
}

struct StoredChunk {
  uint64_t index = 0;
  uint16_t pages = 0;
};

// The chunks a snapshot's memory file stores, from its chunk table
// (memory.chunks: 16 bytes per chunk, a u64 checksum then a u16 page mask).
std::vector<StoredChunk> stored_chunks(const fs::path& snapshot) {
  const std::string table = read_file(snapshot / "memory.chunks");
  std::vector<StoredChunk> chunks;
  for (size_t at = 0; at + 16 <= table.size(); at += 16) {
    uint16_t pages = 0;
    std::memcpy(&pages, table.data() + at + 8, sizeof(pages));
    if (pages != 0) chunks.push_back({at / 16, pages});
  }
  return chunks;
}

std::string checksum_text(uint64_t checksum) {
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "0x%016llx", static_cast<unsigned long long>(checksum));
  return text.data();
}

class RestoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "restore_cli_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    temp_ = pattern;
    work_ = temp_ / "work";
    fs::create_directory(work_);
  }

  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(temp_, ignored);
  }

  // Runs vmfork with `args` (shell syntax, warnings and errors only on
  // stderr) in the directory `cwd` (the test's, if empty) and collects
  // stdout and stderr apart.
  ProcessRun vmfork(const std::string& args, const fs::path& cwd = {}) {
    const fs::path err_path = temp_ / "stderr.txt";
    const std::string cd = cwd.empty() ? std::string() : "cd '" + cwd.string() + "' && ";
    const std::string command =
        cd + "'" + VMFORK_BINARY + "' --log-level warn " + args + " 2>'" + err_path.string() + "'";
    ProcessRun run;
    std::FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return run;
    std::array<char, 4096> buffer;
    size_t got = 0;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
      run.out.append(buffer.data(), got);
    }
    const int status = pclose(pipe);
    run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.err = read_file(err_path);
    fs::remove(err_path);
    return run;
  }

  // snapshotme's first generation, snapshotted into `dir`.
  void snapshot_snapshotme(const fs::path& dir, int vcpus) {
    const ProcessRun run =
        vmfork("run '" + guest("snapshotme") + "' --engine soft --mem 16M --vcpus " +
               std::to_string(vcpus) + " --snapshot '" + dir.string() + "'");
    ASSERT_EQ(run.exit_status, 0) << run.out << run.err;
    ASSERT_EQ(run.out, "[vm0] snapshotme gen 1: snapshot taken\n") << run.err;
    ASSERT_TRUE(fs::exists(dir / "state.json")) << run.err;
  }

  // Restores one clone of `parent`, which snapshots itself into `diff`: a
  // diff snapshot naming `parent`.
  void snapshot_diff(const fs::path& parent, const fs::path& diff) {
    const ProcessRun run = vmfork("restore '" + parent.string() +
                                  "' --clones 1 --engine soft --snapshot '" + diff.string() + "'");
    ASSERT_EQ(run.exit_status, 0) << run.out << run.err;
  }

  fs::path temp_;
  fs::path work_;  // every snapshot of a test lies here
};

// --- snapshots and restores that work ------------------------------------

class RestoreCliVcpus : public RestoreCli, public ::testing::WithParamInterface<int> {};

TEST_P(RestoreCliVcpus, SnapshotmeRestoresThreeClonesEachOnce) {
  const fs::path a = work_ / "a";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, GetParam()));
  const ProcessRun run = vmfork("restore '" + a.string() + "' --clones 3 --engine soft");
  EXPECT_EQ(run.exit_status, 0) << run.err;
  std::vector<std::string> expected;
  for (int k = 1; k <= 3; ++k) {
    const std::string prefix = "[restored." + std::to_string(k) + "] ";
    expected.push_back(prefix + "snapshotme gen 1 clone " + std::to_string(k) +
                       ": restored, memory ok");
    // Generation 2 has no --snapshot to go to.
    expected.push_back(prefix + "snapshotme gen 2: no snapshot");
  }
  std::vector<std::string> lines = lines_of(run.out);
  std::sort(lines.begin(), lines.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(lines, expected) << run.out << run.err;
  EXPECT_FALSE(contains(run.err, "vmfork:")) << run.err;
}

INSTANTIATE_TEST_SUITE_P(Vcpus, RestoreCliVcpus, ::testing::Values(1, 4),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return std::to_string(param_info.param) + "Vcpus";
                         });

// Named relative to the working directory, as a user types them: state.json
// stores the parent's absolute path.
TEST_F(RestoreCli, ARestoredCloneWritesADiffSnapshotThatRestores) {
  const fs::path a = work_ / "a";
  const fs::path b = work_ / "b";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  const ProcessRun second = vmfork("restore a --clones 1 --engine soft --snapshot b", work_);
  ASSERT_EQ(second.exit_status, 0) << second.out << second.err;
  EXPECT_EQ(count_line(second.out, "[restored.1] snapshotme gen 1 clone 1: restored, memory ok"),
            1u)
      << second.out;
  EXPECT_EQ(count_line(second.out, "[restored.1] snapshotme gen 2: snapshot taken"), 1u)
      << second.out;

  const nlohmann::json state = read_json(b / "state.json");
  ASSERT_FALSE(state.is_discarded());
  ASSERT_TRUE(state["parent"].is_string()) << state.dump();
  EXPECT_EQ(state["parent"].get<std::string>(), a.string());
  EXPECT_LT(stored_pages(b), stored_pages(a));
  EXPECT_GT(stored_pages(b), 0u);

  const ProcessRun third = vmfork("restore '" + b.string() + "' --clones 2 --engine soft");
  EXPECT_EQ(third.exit_status, 0) << third.err;
  for (int k = 1; k <= 2; ++k) {
    const std::string prefix = "[restored." + std::to_string(k) + "] ";
    EXPECT_EQ(count_line(third.out, prefix + "snapshotme gen 2 clone " + std::to_string(k) +
                                        ": restored, memory ok"),
              1u)
        << third.out << third.err;
    EXPECT_EQ(count_line(third.out, prefix + "snapshotme gen 3: no snapshot"), 1u) << third.out;
  }
}

TEST_F(RestoreCli, ADiffSnapshotWhoseParentMovedAwayIsRefusedNamingTheParent) {
  const fs::path a = work_ / "a";
  const fs::path b = work_ / "b";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  ASSERT_NO_FATAL_FAILURE(snapshot_diff(a, b));
  fs::rename(a, work_ / "a-moved");
  const auto before = tree_of(work_);

  const ProcessRun run = vmfork("restore '" + b.string() + "' --clones 2 --engine soft");
  EXPECT_NE(run.exit_status, 0);
  EXPECT_TRUE(contains(run.err, a.string())) << run.err;
  EXPECT_TRUE(contains(run.err, (b / "state.json").string())) << run.err;
  EXPECT_TRUE(contains(run.err, "parent")) << run.err;
  EXPECT_FALSE(contains(run.out, "[restored.")) << run.out;
  EXPECT_EQ(tree_of(work_), before);
}

TEST_F(RestoreCli, SnapshotFromOutsideRestoresWithCountersIntact) {
  const fs::path d = work_ / "d";
  const ProcessRun run =
      vmfork("run '" + guest("snapshot_wait") + "' --engine soft --mem 16M --vcpus 2 --snapshot '" +
             d.string() + "' --snapshot-after 100ms");
  ASSERT_EQ(run.exit_status, 0) << run.out << run.err;
  EXPECT_EQ(count_line(run.out, "[vm0] snapshot_wait original: done"), 1u) << run.out << run.err;
  size_t paused_lines = 0;
  for (const std::string& line : lines_of(run.out)) {
    if (line.starts_with("snapshot " + d.string() + ": paused ")) ++paused_lines;
  }
  EXPECT_EQ(paused_lines, 1u) << run.out;

  const ProcessRun restore = vmfork("restore '" + d.string() + "' --clones 2 --engine soft");
  EXPECT_EQ(restore.exit_status, 0) << restore.err;
  for (int k = 1; k <= 2; ++k) {
    const std::string k_text = std::to_string(k);
    EXPECT_EQ(count_line(restore.out, "[restored." + k_text + "] snapshot_wait clone " + k_text +
                                          ": resumed, counters ok"),
              1u)
        << restore.out << restore.err;
  }
}

// An outside snapshot that never happens (every VM ended first) is a failed
// snapshot: a message, exit status 1 although the guest exited 0, and no
// directory. (The delay is long enough for any host to end hello first; the
// run does not wait it out.)
TEST_F(RestoreCli, AnOutsideSnapshotDueAfterTheVmEndedFails) {
  const fs::path d = work_ / "d";
  const ProcessRun run = vmfork("run '" + guest("hello") + "' --engine soft --snapshot '" +
                                d.string() + "' --snapshot-after 600s");
  EXPECT_EQ(run.exit_status, 1) << run.out << run.err;
  EXPECT_EQ(count_line(run.out, "[vm0] hello from vmfork"), 1u) << run.out;
  EXPECT_TRUE(contains(run.err, "--snapshot-after")) << run.err;
  EXPECT_FALSE(contains(run.out, ": paused ")) << run.out;
  EXPECT_FALSE(fs::exists(d));
}

// --- what is refused ----------------------------------------------------

TEST_F(RestoreCli, SnapshotIntoANonEmptyDirectoryLeavesItUntouched) {
  const fs::path d = work_ / "d";
  fs::create_directories(d / "sub");
  write_file(d / "notes.txt", "mine\n");
  write_file(d / "sub" / "state.json", "{}\n");
  const auto before = tree_of(work_);

  const ProcessRun run =
      vmfork("run '" + guest("snapshotme") + "' --engine soft --snapshot '" + d.string() + "'");
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(count_line(run.out, "[vm0] snapshotme gen 1: no snapshot"), 1u) << run.out << run.err;
  EXPECT_FALSE(contains(run.out, "snapshot taken")) << run.out;
  EXPECT_EQ(tree_of(work_), before);
}

TEST_F(RestoreCli, SnapshotFromOutsideIntoANonEmptyDirectoryFailsLeavingItUntouched) {
  const fs::path d = work_ / "d";
  fs::create_directories(d);
  write_file(d / "notes.txt", "mine\n");
  const auto before = tree_of(work_);

  const ProcessRun run =
      vmfork("run '" + guest("snapshot_wait") + "' --engine soft --mem 16M --vcpus 2 --snapshot '" +
             d.string() + "' --snapshot-after 100ms");
  EXPECT_EQ(run.exit_status, 1) << run.out << run.err;
  EXPECT_EQ(count_line(run.out, "[vm0] snapshot_wait original: done"), 1u) << run.out << run.err;
  EXPECT_TRUE(contains(run.err, d.string())) << run.err;
  EXPECT_TRUE(contains(run.err, "not empty")) << run.err;
  EXPECT_FALSE(contains(run.out, ": paused ")) << run.out;
  EXPECT_EQ(tree_of(work_), before);
}

TEST_F(RestoreCli, SnapshotAfterWithoutSnapshotIsRefused) {
  const ProcessRun run =
      vmfork("run '" + guest("snapshotme") + "' --engine soft --snapshot-after 1s");
  EXPECT_NE(run.exit_status, 0);
  EXPECT_TRUE(contains(run.err, "--snapshot-after")) << run.err;
  EXPECT_FALSE(contains(run.out, "snapshotme")) << run.out;  // the guest never ran
  EXPECT_TRUE(fs::is_empty(work_));
}

TEST_F(RestoreCli, BadDurationsAreRefusedNamingTheOption) {
  for (const char* duration : {"10parsecs", "-1s"}) {
    const fs::path d = work_ / "d";
    const ProcessRun run = vmfork("run '" + guest("snapshotme") + "' --engine soft --snapshot '" +
                                  d.string() + "' --snapshot-after " + duration);
    EXPECT_NE(run.exit_status, 0) << duration;
    EXPECT_TRUE(contains(run.err, "--snapshot-after")) << duration << ": " << run.err;
    EXPECT_FALSE(contains(run.out, "snapshotme")) << run.out;
    EXPECT_TRUE(fs::is_empty(work_)) << duration;
  }
}

TEST_F(RestoreCli, CloneCountsOutsideOneTo1024AreRefused) {
  const fs::path a = work_ / "a";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 1));
  const auto before = tree_of(work_);
  for (const char* clones : {"0", "2000"}) {
    const ProcessRun run =
        vmfork("restore '" + a.string() + "' --engine soft --clones " + std::string(clones));
    EXPECT_NE(run.exit_status, 0) << clones;
    EXPECT_TRUE(contains(run.err, "--clones")) << clones << ": " << run.err;
    EXPECT_TRUE(contains(run.err, clones)) << run.err;
    EXPECT_FALSE(contains(run.out, "[restored.")) << run.out;
  }
  EXPECT_EQ(tree_of(work_), before);
}

TEST_F(RestoreCli, RestoreHelpDescribesItsOptions) {
  const ProcessRun run = vmfork("restore --help");
  EXPECT_EQ(run.exit_status, 0);
  const std::string text = run.out + run.err;
  for (const char* option : {"--clones", "--eager", "--engine", "--snapshot"}) {
    EXPECT_TRUE(contains(text, option)) << option << " in\n" << text;
  }
}

// --- damaged snapshots: refused before any clone starts ------------------

// Damages the snapshot in `dir`; returns the directory to restore.
using Damage = std::function<fs::path(const fs::path& dir)>;

struct BadSnapshot {
  const char* name;
  Damage damage;
  // Files (relative to the snapshot) and words the message must name.
  std::vector<const char*> files;
  std::vector<const char*> words;
};

fs::path remove_file(const fs::path& dir, const char* name) {
  fs::remove(dir / name);
  return dir;
}

// Replaces the first occurrence of `from` in `file` by `to`.
void replace_in(const fs::path& file, const std::string& from, const std::string& to) {
  std::string text = read_file(file);
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from << " in " << file;
  text.replace(at, from.size(), to);
  write_file(file, text);
}

// state.json as vmfork writes it, its own checksum recomputed (the same
// XXH3 of the compact dump without the field).
void write_state_json(const fs::path& file, nlohmann::json state) {
  nlohmann::json without = state;
  without.erase("checksum");
  const std::string compact = without.dump();
  state["checksum"] = checksum_text(XXH3_64bits(compact.data(), compact.size()));
  write_file(file, state.dump(2) + "\n");
}

const std::vector<BadSnapshot>& bad_snapshots() {
  static const std::vector<BadSnapshot> cases = {
      {"MissingDirectory",
       [](const fs::path& dir) { return dir.parent_path() / "none"; },
       {},
       {"none", "no such snapshot directory"}},
      {"MissingConfig",
       [](const fs::path& dir) { return remove_file(dir, "config.json"); },
       {"config.json"},
       {}},
      {"MissingState",
       [](const fs::path& dir) { return remove_file(dir, "state.json"); },
       {"state.json"},
       {}},
      {"MissingMemory",
       [](const fs::path& dir) { return remove_file(dir, "memory"); },
       {"memory"},
       {}},
      {"TruncatedMemory",
       [](const fs::path& dir) {
         fs::resize_file(dir / "memory", fs::file_size(dir / "memory") / 2);
         return dir;
       },
       {"memory"},
       {"state.json says", "truncated"}},
      {"ChangedByteInConfig",
       [](const fs::path& dir) {
         std::string text = read_file(dir / "config.json");
         text[text.size() / 2] = static_cast<char>(text[text.size() / 2] ^ 0x01);
         write_file(dir / "config.json", text);
         return dir;
       },
       {"config.json", "state.json"},
       {"config_checksum"}},
      {"ChangedByteInState",
       [](const fs::path& dir) {
         // A digit of config_checksum's value: still valid JSON, so the
         // file's own checksum is what catches it.
         const nlohmann::json state = read_json(dir / "state.json");
         std::string value = state["config_checksum"].get<std::string>();
         const std::string changed =
             value.substr(0, value.size() - 1) + (value.back() == '0' ? "1" : "0");
         replace_in(dir / "state.json", "\"" + value + "\"", "\"" + changed + "\"");
         return dir;
       },
       {"state.json"},
       {"checksum"}},
      {"UnknownFormatVersion",
       [](const fs::path& dir) {
         nlohmann::json state = read_json(dir / "state.json");
         state["format_version"] = 99;
         write_file(dir / "state.json", state.dump(2) + "\n");
         return dir;
       },
       {"state.json"},
       {"format_version", "99"}},
      {"VcpusOfConfigAndStateDiffer",
       // config.json says 1 vCPU, state.json holds 2: both checksums
       // recomputed, so that only the layout check can catch it.
       [](const fs::path& dir) {
         nlohmann::json config = read_json(dir / "config.json");
         config["vcpus"] = 1;
         const std::string config_text = config.dump(2) + "\n";
         write_file(dir / "config.json", config_text);
         nlohmann::json state = read_json(dir / "state.json");
         state["config_checksum"] =
             checksum_text(XXH3_64bits(config_text.data(), config_text.size()));
         write_state_json(dir / "state.json", state);
         return dir;
       },
       {"state.json", "config.json"},
       {"layout.vcpus"}},
      {"PcSnapshotOnTheSoftEngine",
       // Made a Linux guest's snapshot (platform "pc", a PC's devices, both
       // checksums recomputed): a complete snapshot, which only the kvm
       // engine restores.
       [](const fs::path& dir) {
         nlohmann::json config = read_json(dir / "config.json");
         config["platform"] = "pc";
         const std::string config_text = config.dump(2) + "\n";
         write_file(dir / "config.json", config_text);
         nlohmann::json state = read_json(dir / "state.json");
         state["config_checksum"] =
             checksum_text(XXH3_64bits(config_text.data(), config_text.size()));
         state["layout"]["platform"] = "pc";
         state["devices"]["pc"] = {
             {"chips", {{"engine", "kvm"}, {"hex", ""}}},
             {"com1",
              {{"ier", 0},
               {"fcr", 0},
               {"lcr", 3},
               {"mcr", 0},
               {"scr", 0},
               {"dll", 1},
               {"dlm", 0},
               {"thri_pending", false},
               {"irq_level", false},
               {"rx", std::string(32, '0')},
               {"rx_head", 0},
               {"rx_count", 0}}},
             {"rtc", {{"index", 0}, {"nmi_masked", false}, {"ram", std::string(256, '0')}}}};
         write_state_json(dir / "state.json", state);
         return dir;
       },
       {},
       {"snapshot of a Linux guest", "--engine kvm"}},
  };
  return cases;
}

// --- the working set -------------------------------------------------------

TEST_F(RestoreCli, ARecordedWorkingSetIsWrittenAndPrefetchedLater) {
  const fs::path a = work_ / "a";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  const ProcessRun record =
      vmfork("restore '" + a.string() + "' --clones 2 --engine soft --record-working-set 10s");
  ASSERT_EQ(record.exit_status, 0) << record.out << record.err;
  // Recorded when the clones ended, before the 10 s were up.
  EXPECT_TRUE(contains(record.out, "working set " + (a / "working_set.json").string()))
      << record.out;
  const nlohmann::json working_set = read_json(a / "working_set.json");
  ASSERT_TRUE(working_set["chunks"].is_array()) << working_set.dump();
  EXPECT_FALSE(working_set["chunks"].empty());
  // Every chunk recorded is one the snapshot stores or a chunk without data
  // the clones touched; all lie within RAM (16 MiB: 256 chunks).
  for (const nlohmann::json& chunk : working_set["chunks"]) {
    EXPECT_LT(chunk.get<uint64_t>(), 256u);
  }
  for (const char* flags : {"", " --no-prefetch"}) {
    const ProcessRun again =
        vmfork("restore '" + a.string() + "' --clones 2 --engine soft" + flags);
    EXPECT_EQ(again.exit_status, 0) << again.err;
    EXPECT_TRUE(contains(again.out, "[restored.2] snapshotme gen 1 clone 2: restored, memory ok"))
        << again.out;
  }
}

TEST_F(RestoreCli, ABadWorkingSetCostsOnlyThePrefetch) {
  const fs::path a = work_ / "a";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  {
    std::ofstream bad(a / "working_set.json");
    bad << R"({"format_version": 1, "chunks": [1, 999999]})";
  }
  const ProcessRun run = vmfork("restore '" + a.string() + "' --clones 2 --engine soft");
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(contains(run.err, "working set not prefetched")) << run.err;
  EXPECT_TRUE(contains(run.err, (a / "working_set.json").string() + ": chunks: 999999")) << run.err;
  EXPECT_TRUE(contains(run.out, "[restored.1] snapshotme gen 1 clone 1: restored, memory ok"))
      << run.out;
}

class RestoreCliRefuses : public RestoreCli, public ::testing::WithParamInterface<size_t> {};

TEST_P(RestoreCliRefuses, BeforeAnyCloneStartsNamingTheFileAndField) {
  const BadSnapshot& bad = bad_snapshots()[GetParam()];
  const fs::path a = work_ / "a";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  const fs::path target = bad.damage(a);
  const auto before = tree_of(work_);

  for (const char* eager : {"", " --eager"}) {
    const ProcessRun run =
        vmfork("restore '" + target.string() + "' --clones 2 --engine soft" + eager);
    EXPECT_NE(run.exit_status, 0) << eager;
    for (const char* file : bad.files) {
      EXPECT_TRUE(contains(run.err, (a / file).string())) << file << " in: " << run.err;
    }
    for (const char* word : bad.words) {
      EXPECT_TRUE(contains(run.err, word)) << word << " in: " << run.err;
    }
    EXPECT_FALSE(contains(run.out, "[restored.")) << run.out;
    EXPECT_EQ(tree_of(work_), before) << eager;
  }
}

INSTANTIATE_TEST_SUITE_P(DamagedSnapshots, RestoreCliRefuses,
                         ::testing::Range(size_t{0}, bad_snapshots().size()),
                         [](const ::testing::TestParamInfo<size_t>& param_info) {
                           return std::string(bad_snapshots()[param_info.param].name);
                         });

// The parent replaced by another snapshot (here with another vCPU count):
// the diff recorded its parent's checksum, so it is refused before anything
// is read from the wrong memory.
TEST_F(RestoreCli, AReplacedParentIsRefused) {
  const fs::path a = work_ / "a";
  const fs::path b = work_ / "b";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  ASSERT_NO_FATAL_FAILURE(snapshot_diff(a, b));
  fs::remove_all(a);
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 1));
  const auto before = tree_of(work_);

  const ProcessRun run = vmfork("restore '" + b.string() + "' --clones 2 --engine soft");
  EXPECT_NE(run.exit_status, 0);
  EXPECT_TRUE(contains(run.err, (b / "state.json").string())) << run.err;
  EXPECT_TRUE(contains(run.err, "parent")) << run.err;
  EXPECT_TRUE(contains(run.err, a.string())) << run.err;
  EXPECT_TRUE(contains(run.err, "parent_checksum")) << run.err;
  EXPECT_TRUE(contains(run.err, "replaced or changed")) << run.err;
  EXPECT_FALSE(contains(run.out, "[restored.")) << run.out;
  EXPECT_EQ(tree_of(work_), before);
}

// --- a damaged memory chunk -----------------------------------------------

// Flips a byte in the highest stored page of chunk `index` of `dir`'s memory
// file.
void flip_a_byte_in_chunk(const fs::path& dir, uint64_t index) {
  for (const StoredChunk& chunk : stored_chunks(dir)) {
    if (chunk.index != index) continue;
    const uint16_t mask = chunk.pages;
    const uint64_t page = 15u - static_cast<uint64_t>(std::countl_zero(mask));
    const uint64_t offset = index * 65536 + page * 4096 + 100;
    std::fstream memory(dir / "memory", std::ios::in | std::ios::out | std::ios::binary);
    memory.seekg(static_cast<std::streamoff>(offset));
    char byte = 0;
    memory.read(&byte, 1);
    memory.seekp(static_cast<std::streamoff>(offset));
    byte = static_cast<char>(byte ^ 0x40);
    memory.write(&byte, 1);
    return;
  }
  ADD_FAILURE() << "chunk " << index << " is not stored in " << dir;
}

// Flips a byte in the last stored chunk: vCPU 0's stack, which every clone
// touches first. Returns the chunk's index.
uint64_t flip_a_stored_byte(const fs::path& dir) {
  const std::vector<StoredChunk> chunks = stored_chunks(dir);
  if (chunks.empty()) {
    ADD_FAILURE() << dir << " stores no chunk";
    return 0;
  }
  const uint64_t index = chunks.back().index;
  flip_a_byte_in_chunk(dir, index);
  return index;
}

TEST_F(RestoreCli, ADamagedChunkEndsTheClonesThatTouchIt) {
  const fs::path a = work_ / "a";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  const uint64_t chunk = flip_a_stored_byte(a);
  const auto before = tree_of(work_);

  const ProcessRun run = vmfork("restore '" + a.string() + "' --clones 2 --engine soft");
  EXPECT_EQ(run.exit_status, 1) << run.out << run.err;
  EXPECT_TRUE(contains(run.err, "memory fault")) << run.err;
  EXPECT_TRUE(contains(run.err, (a / "memory").string())) << run.err;
  EXPECT_TRUE(contains(run.err, "chunk " + std::to_string(chunk))) << run.err;
  for (int k = 1; k <= 2; ++k) {
    EXPECT_TRUE(contains(run.err, "vmfork: restored." + std::to_string(k) + " vCPU")) << run.err;
  }
  EXPECT_FALSE(contains(run.out, "memory ok")) << run.out;
  EXPECT_EQ(tree_of(work_), before);
}

TEST_F(RestoreCli, ADamagedChunkRefusesAnEagerRestore) {
  const fs::path a = work_ / "a";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  const uint64_t chunk = flip_a_stored_byte(a);
  const auto before = tree_of(work_);

  const ProcessRun run = vmfork("restore '" + a.string() + "' --clones 2 --engine soft --eager");
  EXPECT_NE(run.exit_status, 0);
  EXPECT_TRUE(contains(run.err, (a / "memory").string())) << run.err;
  EXPECT_TRUE(contains(run.err, "chunk " + std::to_string(chunk))) << run.err;
  EXPECT_FALSE(contains(run.out, "[restored.")) << run.out;
  EXPECT_EQ(tree_of(work_), before);
}

// A diff's parent is read through the diff: a damaged chunk of the parent
// that the diff does not store (the guest's code, at 1 MiB, which no
// generation rewrites) ends the clones lazily and refuses an eager restore,
// naming the parent's memory file.
TEST_F(RestoreCli, ADamagedChunkOfTheParentIsFoundThroughTheDiff) {
  const fs::path a = work_ / "a";
  const fs::path b = work_ / "b";
  ASSERT_NO_FATAL_FAILURE(snapshot_snapshotme(a, 2));
  ASSERT_NO_FATAL_FAILURE(snapshot_diff(a, b));
  const uint64_t code_chunk = (uint64_t{1} << 20) / 65536;
  for (const StoredChunk& chunk : stored_chunks(b)) {
    // Its data pages may be in the diff; its first page, the code, is not.
    if (chunk.index == code_chunk) {
      ASSERT_EQ(chunk.pages & 1u, 0u) << "the diff stores the code";
    }
  }
  ASSERT_NO_FATAL_FAILURE(flip_a_byte_in_chunk(a, code_chunk));
  const auto before = tree_of(work_);

  const ProcessRun lazy = vmfork("restore '" + b.string() + "' --clones 2 --engine soft");
  EXPECT_EQ(lazy.exit_status, 1) << lazy.out << lazy.err;
  EXPECT_TRUE(contains(lazy.err, "memory fault")) << lazy.err;
  EXPECT_TRUE(contains(lazy.err, (a / "memory").string() + ": chunk " + std::to_string(code_chunk)))
      << lazy.err;
  EXPECT_FALSE(contains(lazy.out, "memory ok")) << lazy.out;

  const ProcessRun eager = vmfork("restore '" + b.string() + "' --clones 2 --engine soft --eager");
  EXPECT_NE(eager.exit_status, 0);
  EXPECT_TRUE(
      contains(eager.err, (a / "memory").string() + ": chunk " + std::to_string(code_chunk)))
      << eager.err;
  EXPECT_FALSE(contains(eager.out, "[restored.")) << eager.out;
  EXPECT_EQ(tree_of(work_), before);
}

}  // namespace
