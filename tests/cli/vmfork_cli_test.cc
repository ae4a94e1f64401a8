// The vmfork CLI as a user runs it. Benchmarks run with tiny sizes; the
// checks are on the output's shape, never on timings.
#include <sys/wait.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/host_kernel.h"

namespace {

enum class Capture : uint8_t { kStdoutOnly, kStdoutAndStderr };

struct ProcessRun {
  int exit_status = -1;
  std::string output;
};

// Runs vmfork with `args` (shell syntax) and collects what it printed.
ProcessRun run_vmfork(const std::string& args, Capture capture) {
  std::string command = std::string("'") + VMFORK_BINARY + "' " + args;
  command += capture == Capture::kStdoutAndStderr ? " 2>&1" : " 2>/dev/null";
  ProcessRun run;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer;
  size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    run.output.append(buffer.data(), got);
  }
  const int status = pclose(pipe);
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// Parses stdout as exactly one JSON object (trailing text fails the parse).
nlohmann::json parse_json(const ProcessRun& run) {
  nlohmann::json json = nlohmann::json::parse(run.output, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(json.is_discarded()) << "stdout is not one JSON value:\n" << run.output;
  EXPECT_TRUE(json.is_object()) << run.output;
  return json;
}

// The whole of a file, or an empty string if it cannot be read.
std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// What --plot writes: one standalone SVG document naming `names`.
void expect_svg_chart(const std::string& path, std::initializer_list<const char*> names) {
  const std::string svg = read_file(path);
  ASSERT_FALSE(svg.empty()) << path << " was not written";
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u) << svg;
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos) << svg;
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n") << svg;
  for (const char* name : names)
    EXPECT_NE(svg.find(name), std::string::npos) << name << " in " << svg;
}

void expect_number(const nlohmann::json& object, const char* field) {
  ASSERT_TRUE(object.contains(field)) << "missing " << field << " in " << object.dump();
  ASSERT_TRUE(object[field].is_number()) << field << " is not a number in " << object.dump();
}

void expect_positive_number(const nlohmann::json& object, const char* field) {
  expect_number(object, field);
  if (object.contains(field) && object[field].is_number()) {
    EXPECT_GT(object[field].get<double>(), 0) << field;
  }
}

// A ratio printed rounded to 0.01: 0 when it is under 0.005.
void expect_non_negative_number(const nlohmann::json& object, const char* field) {
  expect_number(object, field);
  if (object.contains(field) && object[field].is_number()) {
    EXPECT_GE(object[field].get<double>(), 0) << field;
  }
}

TEST(VmforkCli, HelpExitsZeroAndListsTheBenchSubcommand) {
  const ProcessRun run = run_vmfork("--help", Capture::kStdoutAndStderr);
  EXPECT_EQ(run.exit_status, 0);
  EXPECT_NE(run.output.find("bench"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--log-level"), std::string::npos) << run.output;
}

TEST(VmforkCli, BenchHelpListsCloneAndCow) {
  const ProcessRun run = run_vmfork("bench --help", Capture::kStdoutAndStderr);
  EXPECT_EQ(run.exit_status, 0);
  EXPECT_NE(run.output.find("clone"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("cow"), std::string::npos) << run.output;
}

TEST(VmforkCli, CloneHelpDescribesItsOptions) {
  const ProcessRun run = run_vmfork("bench clone --help", Capture::kStdoutAndStderr);
  EXPECT_EQ(run.exit_status, 0);
  for (const char* option : {"--sizes", "--repeat", "--fork-repeat", "--fork-max", "--json"}) {
    EXPECT_NE(run.output.find(option), std::string::npos) << option << " in\n" << run.output;
  }
}

TEST(VmforkCli, CowHelpDescribesItsOptions) {
  const ProcessRun run = run_vmfork("bench cow --help", Capture::kStdoutAndStderr);
  EXPECT_EQ(run.exit_status, 0);
  for (const char* option : {"--size", "--rounds", "--kernel-repeat", "--json"}) {
    EXPECT_NE(run.output.find(option), std::string::npos) << option << " in\n" << run.output;
  }
}

// A bad command line fails, and its message names what was wrong.
struct BadArguments {
  const char* name;
  const char* args;
  std::vector<const char*> mentions;
};

class VmforkCliRefuses : public ::testing::TestWithParam<BadArguments> {};

TEST_P(VmforkCliRefuses, WithAMessageNamingTheProblem) {
  const ProcessRun run = run_vmfork(GetParam().args, Capture::kStdoutAndStderr);
  EXPECT_NE(run.exit_status, 0);
  for (const char* mention : GetParam().mentions) {
    EXPECT_NE(run.output.find(mention), std::string::npos) << run.output;
  }
}

INSTANTIATE_TEST_SUITE_P(
    BadCommandLines, VmforkCliRefuses,
    ::testing::Values(
        BadArguments{"NoSubcommand", "", {"subcommand"}},
        BadArguments{"UnknownFlag", "bench clone --no-such-flag", {"--no-such-flag"}},
        BadArguments{"MalformedSize", "bench clone --sizes 64M,12Q", {"12Q"}},
        BadArguments{"SizeNotWholePages", "bench cow --size 5000", {"4 KiB"}},
        BadArguments{"ZeroRepeat", "bench clone --repeat 0", {"--repeat"}},
        // Validation happens before anything runs (a tiny size in case it did not).
        BadArguments{"UnknownLogLevel",
                     "--log-level loud bench cow --size 16K --rounds 1 --kernel-repeat 1",
                     {"loud", "debug"}},
        BadArguments{"SizeAboveTheBenchLimit", "bench clone --sizes 32T --repeat 1", {"32 TiB"}},
        BadArguments{
            "UnknownEngine", "run --engine qemu /etc/os-release", {"'qemu'", "auto, soft, kvm"}},
        BadArguments{"UnknownBenchEngine", "bench fork --engine tcg", {"'tcg'", "soft, kvm"}},
        BadArguments{"TooManyIdleClones", "bench fork --idle-clones 257", {"--idle-clones"}},
        // Refused before the bench runs (it would take minutes at the default sizes).
        BadArguments{
            "IdleRamNotWholeLargePages", "bench fork --idle-mem 3M", {"--idle-mem", "2 MiB"}},
        BadArguments{"CowSizeBeyondHostMemory",
                     "bench cow --size 900G --rounds 1 --kernel-repeat 1",
                     {"available"}},
        // Not CLI11's "Value abc not in range 1 to 64".
        BadArguments{"VcpusNotANumber",
                     "run --vcpus abc /etc/os-release",
                     {"--vcpus", "'abc' is not a number"}},
        BadArguments{"VcpusOutOfRange", "run --vcpus 65 /etc/os-release", {"65", "1 to 64"}},
        // Linux guests (issue 14): what goes with --kernel, and what a PC's RAM can be.
        BadArguments{"RunWithoutAProgram", "run --vcpus 2", {"a guest ELF or --kernel"}},
        BadArguments{
            "RunGuestAndKernel", "run /etc/os-release --kernel /etc/os-release", {"--kernel"}},
        BadArguments{"InitrdWithoutKernel",
                     "run /etc/os-release --initrd /etc/os-release",
                     {"--initrd", "--kernel"}},
        BadArguments{"KernelNotABzImage",
                     "run --engine soft --kernel /etc/os-release",
                     {"/etc/os-release", "bzImage"}},
        BadArguments{"LinuxRamAboveTheHole",
                     "run --engine soft --kernel /etc/os-release --mem 4G",
                     {"3 GiB"}},
        // Not CLI11's "A subcommand is required".
        BadArguments{
            "UnknownSubcommand", "runn x", {"unknown subcommand 'runn'", "run, restore, bench"}},
        BadArguments{"UnknownBenchSubcommand", "bench clonee", {"unknown subcommand 'clonee'"}},
        // Its pool would pass the frame pool's own limit (2^32 frames).
        BadArguments{"CloneSizeAtTheFramePoolLimit",
                     "bench clone --sizes 16T --repeat 1",
                     {"16 TiB", "8 TiB"}}),
    [](const ::testing::TestParamInfo<BadArguments>& param_info) { return param_info.param.name; });

TEST(VmforkCli, TheSoftEngineRefusesALinuxKernelByName) {
  const std::optional<std::filesystem::path> kernel = vmfork::testing::host_kernel();
  if (!kernel) GTEST_SKIP() << "no readable /boot/vmlinuz-*";
  const ProcessRun run =
      run_vmfork("run --engine soft --kernel " + kernel->string(), Capture::kStdoutAndStderr);
  EXPECT_NE(run.exit_status, 0);
  EXPECT_NE(run.output.find("--engine kvm"), std::string::npos) << run.output;
}

TEST(VmforkCli, RunHelpDescribesTheLinuxOptions) {
  const ProcessRun run = run_vmfork("run --help", Capture::kStdoutAndStderr);
  EXPECT_EQ(run.exit_status, 0);
  for (const char* option : {"--kernel", "--initrd", "--cmdline", "console=ttyS0"}) {
    EXPECT_NE(run.output.find(option), std::string::npos) << option << " in\n" << run.output;
  }
}

// MemAvailable in bytes, 0 when unknown.
uint64_t host_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::string unit;
  uint64_t kib = 0;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

TEST(VmforkCli, CloneRefusesASizeWhoseTablesTheHostCannotHold) {
  // A fully mapped 8 TiB space writes 32 GiB of page tables and frame
  // table; refused up front, it must not start populating them.
  const uint64_t available = host_available_bytes();
  if (available == 0 || available >= (uint64_t{32} << 30)) {
    GTEST_SKIP() << "this host has 32 GiB or more available (or no /proc/meminfo)";
  }
  const ProcessRun run =
      run_vmfork("bench clone --sizes 8T --repeat 1 --fork-max 4K", Capture::kStdoutAndStderr);
  EXPECT_NE(run.exit_status, 0);
  EXPECT_NE(run.output.find("8 TiB"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("available"), std::string::npos) << run.output;
}

TEST(VmforkCli, CloneJsonHasTheRequiredFields) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench clone --json --sizes 64M --repeat 3 "
      "--fork-repeat 1",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  ASSERT_TRUE(json.contains("results") && json["results"].is_array()) << run.output;
  ASSERT_EQ(json["results"].size(), 1u);
  const nlohmann::json& row = json["results"][0];
  EXPECT_EQ(row["ram_bytes"], uint64_t{64} << 20);
  expect_positive_number(row, "clone_ns_median");
  expect_positive_number(row, "linux_fork_ns_median");
}

TEST(VmforkCli, JsonOnStdoutStaysAloneWithDefaultLogging) {
  // Progress logs go to stderr; stdout holds one JSON object only.
  const ProcessRun run =
      run_vmfork("bench clone --json --sizes 64K --repeat 1 --fork-repeat 1", Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  EXPECT_TRUE(json.contains("results")) << run.output;
}

TEST(VmforkCli, CloneJsonHasNullForkAboveTheForkLimit) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench clone --json --sizes 4M,8M --repeat 3 "
      "--fork-repeat 1 --fork-max 4M",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  ASSERT_EQ(json["results"].size(), 2u) << run.output;
  EXPECT_EQ(json["results"][0]["ram_bytes"], uint64_t{4} << 20);
  expect_positive_number(json["results"][0], "linux_fork_ns_median");
  EXPECT_EQ(json["results"][1]["ram_bytes"], uint64_t{8} << 20);
  expect_positive_number(json["results"][1], "clone_ns_median");
  ASSERT_TRUE(json["results"][1].contains("linux_fork_ns_median"));
  EXPECT_TRUE(json["results"][1]["linux_fork_ns_median"].is_null()) << run.output;
}

TEST(VmforkCli, CloneWithoutJsonPrintsATable) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench clone --sizes 4M --repeat 3 --fork-repeat 1", Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("4 MiB"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("clone median"), std::string::npos) << run.output;
}

TEST(VmforkCli, CowJsonHasTheRequiredFields) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench cow --json --size 1M --rounds 1 "
      "--kernel-repeat 1",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  expect_positive_number(json, "kernel_cow_ns_per_fault_median");
  ASSERT_TRUE(json.contains("threads") && json["threads"].is_array()) << run.output;
  ASSERT_EQ(json["threads"].size(), 2u) << run.output;
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json& row = json["threads"][i];
    EXPECT_EQ(row["threads"], i + 1);
    expect_positive_number(row, "ns_per_fault_median");
    expect_positive_number(row, "faults_per_sec");
  }
  // Issue 13 part 4: our 2-thread scaling against plain copies' in the same run.
  // The three ratios are printed rounded to 0.01, each computed from the
  // unrounded others, so the check allows exactly that rounding: on a loaded
  // host a 2-thread rate can be a few hundredths of the 1-thread one (or
  // round to 0), where the quotient of the rounded figures says little.
  expect_non_negative_number(json, "rate_2_over_1");
  expect_non_negative_number(json, "plain_copy_rate_2_over_1");
  expect_non_negative_number(json, "scaling_over_plain_copy");
  constexpr double kHalfCent = 0.005 + 1e-9;
  const double ours = json["rate_2_over_1"].get<double>();
  const double plain = json["plain_copy_rate_2_over_1"].get<double>();
  const double scaling = json["scaling_over_plain_copy"].get<double>();
  EXPECT_GE(scaling + kHalfCent, (ours - kHalfCent) / (plain + kHalfCent)) << run.output;
  if (plain > kHalfCent) {
    EXPECT_LE(scaling - kHalfCent, (ours + kHalfCent) / (plain - kHalfCent)) << run.output;
  }
}

TEST(VmforkCli, CowWithoutJsonPrintsATable) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench cow --size 1M --rounds 1 --kernel-repeat 1", Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("faulting threads"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("kernel"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("our scaling / the ceiling's"), std::string::npos) << run.output;
}

// Also: the guest's console line ("[mix] mix iterations ...") stays off
// stdout, which holds the one JSON object.
TEST(VmforkCli, CpuJsonHasTheMixFields) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench cpu --json --iterations 1000 --repeat 1 --mix-iterations 10",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  expect_positive_number(json, "mips");
  expect_positive_number(json, "host_mips");
  ASSERT_TRUE(json.contains("mix") && json["mix"].is_object()) << run.output;
  const nlohmann::json& mix = json["mix"];
  expect_positive_number(mix, "guest_iterations");
  EXPECT_EQ(mix["host_iterations"], 10) << run.output;
  ASSERT_TRUE(mix.contains("crc") && mix["crc"].is_string()) << run.output;
  expect_positive_number(mix, "soft_iterations_per_sec");
  expect_positive_number(mix, "native_iterations_per_sec");
  expect_positive_number(mix, "soft_over_native");
  // qemu-x86_64 is optional on the host: its figures are numbers or null together.
  ASSERT_TRUE(mix.contains("qemu") && mix.contains("qemu_iterations_per_sec") &&
              mix.contains("soft_over_qemu"))
      << run.output;
  if (mix["qemu"].is_null()) {
    EXPECT_TRUE(mix["qemu_iterations_per_sec"].is_null()) << run.output;
    EXPECT_TRUE(mix["soft_over_qemu"].is_null()) << run.output;
  } else {
    expect_positive_number(mix, "qemu_iterations_per_sec");
    expect_positive_number(mix, "soft_over_qemu");
  }
}

TEST(VmforkCli, CpuWithoutJsonPrintsTheMix) {
  const ProcessRun run =
      run_vmfork("--log-level off bench cpu --iterations 1000 --repeat 1 --mix-iterations 10",
                 Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("MIPS"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("soft / native"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("[mix]"), std::string::npos) << run.output;
}

TEST(VmforkCli, CpuWithAMissingMixGuestFails) {
  const ProcessRun run = run_vmfork("bench cpu --repeat 1 --mix-guest /nonexistent/mix.elf",
                                    Capture::kStdoutAndStderr);
  EXPECT_NE(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("/nonexistent/mix.elf"), std::string::npos) << run.output;
}

TEST(VmforkCli, RestoreJsonHasTheRequiredFields) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench restore --json --sizes 64M --clones 1,2 --repeat 1 "
      "--work-pages 16",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  ASSERT_TRUE(json.contains("engine")) << run.output;
  EXPECT_EQ(json["engine"], "soft");
  EXPECT_EQ(json["work_pages"], 16);
  EXPECT_EQ(json["repeat"], 1);
  ASSERT_TRUE(json.contains("snapshots") && json["snapshots"].is_array()) << run.output;
  ASSERT_EQ(json["snapshots"].size(), 1u) << run.output;
  const nlohmann::json& snapshot = json["snapshots"][0];
  EXPECT_EQ(snapshot["ram_bytes"], uint64_t{64} << 20);
  for (const char* field :
       {"pause_ns", "write_ns", "pages", "working_set_chunks", "state_json_bytes",
        "state_json_read_ns", "state_json_parse_ns", "state_json_check_ns"}) {
    expect_positive_number(snapshot, field);
  }
  ASSERT_TRUE(json.contains("results") && json["results"].is_array()) << run.output;
  // Clone counts 1 and 2, each in the three modes.
  ASSERT_EQ(json["results"].size(), 6u) << run.output;
  size_t index = 0;
  for (uint32_t clones : {1u, 2u}) {
    for (const char* mode : {"lazy", "eager", "prefetch"}) {
      const nlohmann::json& row = json["results"][index++];
      EXPECT_EQ(row["ram_bytes"], uint64_t{64} << 20);
      EXPECT_EQ(row["clones"], clones);
      EXPECT_EQ(row["mode"], mode);
      for (const char* field : {"first_instruction_ns_median", "first_instruction_ns_max",
                                "first_instruction_after_open_ns_median", "work_ns_median",
                                "open_ns_median", "build_ns_median"}) {
        expect_positive_number(row, field);
      }
      ASSERT_TRUE(row.contains("read_ns_median")) << row.dump();
      if (std::string(mode) == "eager") expect_positive_number(row, "read_ns_median");
    }
  }
  ASSERT_TRUE(json.contains("ratios") && json["ratios"].is_object()) << run.output;
  for (const char* name : {"eager_over_lazy_first_instruction", "lazy_over_prefetch_work",
                           "lazy_first_instruction_largest_over_smallest"}) {
    ASSERT_TRUE(json["ratios"].contains(name) && json["ratios"][name].is_array())
        << name << " in " << run.output;
    ASSERT_EQ(json["ratios"][name].size(), 2u) << name << " in " << run.output;
    for (const nlohmann::json& entry : json["ratios"][name]) {
      expect_positive_number(entry, "ratio");
      expect_positive_number(entry, "clones");
    }
  }
  for (const char* name :
       {"eager_over_lazy_first_instruction", "lazy_first_instruction_largest_over_smallest"}) {
    for (const nlohmann::json& entry : json["ratios"][name]) {
      expect_positive_number(entry, "ratio_after_open");
    }
  }
}

TEST(VmforkCli, RestoreWithoutJsonPrintsATable) {
  const ProcessRun run =
      run_vmfork("--log-level off bench restore --sizes 64M --clones 1 --repeat 1 --work-pages 16",
                 Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("64 MiB"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("first median"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("eager / lazy"), std::string::npos) << run.output;
}

TEST(VmforkCli, RestoreRefusesMoreWorkPagesThanTheRamHolds) {
  const ProcessRun run = run_vmfork(
      "bench restore --sizes 4M --clones 1 --repeat 1 "
      "--work-pages 100000",
      Capture::kStdoutAndStderr);
  EXPECT_NE(run.exit_status, 0);
  EXPECT_NE(run.output.find("--work-pages"), std::string::npos) << run.output;
}

TEST(VmforkCli, ForkJsonReportsWhatEachIdleCloneHolds) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench fork --json --sizes 4M --clones 1 --repeat 1 --fork-repeat 1 "
      "--idle-clones 4 --idle-mem 8M",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  ASSERT_TRUE(json.contains("idle_clone_memory") && json["idle_clone_memory"].is_array())
      << run.output;
  ASSERT_EQ(json["idle_clone_memory"].size(), 1u) << run.output;
  const nlohmann::json& idle = json["idle_clone_memory"][0];
  EXPECT_EQ(idle["engine"], "soft");
  EXPECT_EQ(idle["ram_bytes"], uint64_t{8} << 20);
  EXPECT_EQ(idle["clones"], 4);
  // Each clone wrote its id into its boot-info page: that page and the
  // tables above it are its own, and nothing else is.
  EXPECT_EQ(idle["private_data_frames"], 1) << run.output;
  EXPECT_GE(idle["private_table_frames"], 1) << run.output;
  EXPECT_TRUE(idle["pss_bytes"].is_number_integer()) << run.output;
  EXPECT_TRUE(idle["kernel_bytes"].is_number_integer()) << run.output;
  EXPECT_TRUE(idle["host_mappings"].is_null()) << run.output;
}

// An unsigned integer field of a JSON row.
uint64_t field_of(const nlohmann::json& row, const char* field) {
  EXPECT_TRUE(row.contains(field) && row[field].is_number_unsigned())
      << field << " in " << row.dump();
  return row.value(field, uint64_t{0});
}

TEST(VmforkCli, ForkJsonBreaksEachRowIntoPhases) {
  // One fork per row: its phases come before its clones' first
  // instructions, and the build per clone is the build's share.
  const ProcessRun run = run_vmfork(
      "--log-level off bench fork --json --sizes 4M --clones 1,3 --repeat 1 --fork-repeat 1 "
      "--idle-clones 0",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  ASSERT_EQ(json["results"].size(), 2u) << run.output;
  for (const nlohmann::json& row : json["results"]) {
    const uint64_t clones = field_of(row, "clones");
    const uint64_t pause = field_of(row, "pause_ns_median");  // may be 0: one vCPU, no one to stop
    const uint64_t snapshot = field_of(row, "snapshot_ns_median");
    const uint64_t build = field_of(row, "build_ns_median");
    const uint64_t per_clone = field_of(row, "build_per_clone_ns_median");
    const uint64_t start = field_of(row, "start_ns_median");
    const uint64_t fork = field_of(row, "fork_ns_median");
    EXPECT_GT(snapshot, 0u) << row.dump();
    EXPECT_GT(build, 0u) << row.dump();
    EXPECT_LE(per_clone * clones, build) << row.dump();
    EXPECT_GT((per_clone + 1) * clones, build) << row.dump();
    EXPECT_LE(pause + snapshot + build, fork) << row.dump();
    EXPECT_LE(start, fork) << row.dump();
    // The kvm figure only.
    EXPECT_FALSE(row.contains("build_per_clone_over_kvm_create")) << row.dump();
  }
}

TEST(VmforkCli, ForkTableShowsThePhases) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench fork --sizes 4M --clones 2 --repeat 1 --fork-repeat 1 "
      "--idle-clones 0",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  for (const char* header : {"fork median", "pause", "snapshot", "build", "build/clone", "start"}) {
    EXPECT_NE(run.output.find(header), std::string::npos) << header << " in\n" << run.output;
  }
  EXPECT_EQ(run.output.find("KVM create"), std::string::npos) << run.output;
}

TEST(VmforkCli, ForkWithoutIdleClonesReportsNoIdleMemory) {
  const ProcessRun run = run_vmfork(
      "--log-level off bench fork --json --sizes 4M --clones 1 --repeat 1 --fork-repeat 1 "
      "--idle-clones 0",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const nlohmann::json json = parse_json(run);
  ASSERT_TRUE(json.contains("idle_clone_memory")) << run.output;
  EXPECT_TRUE(json["idle_clone_memory"].empty()) << run.output;
}

TEST(VmforkCli, ForkPlotWritesAnSvgChartBesideTheTable) {
  const std::string path = testing::TempDir() + "vmfork_cli_fork_plot.svg";
  std::remove(path.c_str());
  const ProcessRun run = run_vmfork(
      "--log-level off bench fork --sizes 4M,8M --clones 1,2 --repeat 1 --fork-repeat 1 "
      "--plot '" +
          path + "'",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("fork median"), std::string::npos) << run.output;
  expect_svg_chart(path, {"1 clone", "2 clones", "Linux fork()", "4 MiB", "8 MiB"});
  std::remove(path.c_str());
}

TEST(VmforkCli, RestorePlotWritesAnSvgChartBesideTheJson) {
  const std::string path = testing::TempDir() + "vmfork_cli_restore_plot.svg";
  std::remove(path.c_str());
  const ProcessRun run = run_vmfork(
      "--log-level off bench restore --json --sizes 64M --clones 1 --repeat 1 --work-pages 16 "
      "--plot '" +
          path + "'",
      Capture::kStdoutOnly);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  parse_json(run);
  expect_svg_chart(path, {"lazy, 1 clone", "eager, 1 clone", "prefetch, 1 clone", "64 MiB"});
  std::remove(path.c_str());
}

TEST(VmforkCli, PlotToAnUnwritablePathFailsBeforeTheBench) {
  // Default logging: a bench that ran would have logged its rows
  // ("fork bench: ...") and printed its table.
  const ProcessRun run = run_vmfork(
      "bench fork --sizes 4M --clones 1 --repeat 1 --fork-repeat 1 "
      "--plot /nonexistent-dir/fork.svg",
      Capture::kStdoutAndStderr);
  EXPECT_NE(run.exit_status, 0);
  EXPECT_NE(run.output.find("--plot /nonexistent-dir/fork.svg"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("fork bench:"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("fork median"), std::string::npos) << run.output;
}

}  // namespace
