#include "vmm/bench/report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "vmm/cli/size_arg.h"

namespace vmfork::bench {

namespace {

// Nanosecond figures to 0.1 ns: finer digits are noise.
double tenths(double value) {
  return std::round(value * 10) / 10;
}

double ratio(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0;
}

// Largest over smallest clone median: DESIGN section 10 wants at most 2.
double clone_flatness(const CloneBenchReport& report) {
  uint64_t lowest = ~uint64_t{0};
  uint64_t highest = 0;
  for (const CloneBenchRow& row : report.rows) {
    lowest = std::min(lowest, row.clone_ns_median);
    highest = std::max(highest, row.clone_ns_median);
  }
  return ratio(static_cast<double>(highest), static_cast<double>(lowest));
}

std::string human_ns(double ns) {
  if (ns >= 1e9) return fmt::format("{:.2f} s", ns * 1e-9);
  if (ns >= 1e6) return fmt::format("{:.2f} ms", ns * 1e-6);
  if (ns >= 1e3) return fmt::format("{:.2f} us", ns * 1e-3);
  return fmt::format("{:.0f} ns", ns);
}

// The ratios DESIGN section 10 asks of restore, measured in the same run.
struct RestoreRatio {
  uint64_t ram_bytes = 0;  // for the flatness ratio: the largest size
  uint64_t smallest_ram_bytes = 0;
  uint32_t clones = 0;
  double value = 0;
  double after_open = 0;  // first-instruction ratios: the same less open_snapshot
};

const RestoreBenchRow* find_row(const RestoreBenchReport& report, uint64_t ram_bytes,
                                uint32_t clones, RestoreMode mode) {
  for (const RestoreBenchRow& row : report.rows) {
    if (row.ram_bytes == ram_bytes && row.clones == clones && row.mode == mode) return &row;
  }
  return nullptr;
}

// Per size and clone count: eager over lazy, first instruction.
std::vector<RestoreRatio> eager_over_lazy(const RestoreBenchReport& report) {
  std::vector<RestoreRatio> ratios;
  for (const RestoreBenchRow& eager : report.rows) {
    if (eager.mode != RestoreMode::kEager) continue;
    const RestoreBenchRow* lazy =
        find_row(report, eager.ram_bytes, eager.clones, RestoreMode::kLazy);
    if (lazy == nullptr) continue;
    ratios.push_back({.ram_bytes = eager.ram_bytes,
                      .smallest_ram_bytes = 0,
                      .clones = eager.clones,
                      .value = ratio(static_cast<double>(eager.first_ns_median),
                                     static_cast<double>(lazy->first_ns_median)),
                      .after_open = ratio(static_cast<double>(eager.first_after_open_ns_median),
                                          static_cast<double>(lazy->first_after_open_ns_median))});
  }
  return ratios;
}

// Per size and clone count: lazy over prefetch, every clone done.
std::vector<RestoreRatio> lazy_over_prefetch(const RestoreBenchReport& report) {
  std::vector<RestoreRatio> ratios;
  for (const RestoreBenchRow& prefetch : report.rows) {
    if (prefetch.mode != RestoreMode::kPrefetch) continue;
    const RestoreBenchRow* lazy =
        find_row(report, prefetch.ram_bytes, prefetch.clones, RestoreMode::kLazy);
    if (lazy == nullptr) continue;
    ratios.push_back({.ram_bytes = prefetch.ram_bytes,
                      .smallest_ram_bytes = 0,
                      .clones = prefetch.clones,
                      .value = ratio(static_cast<double>(lazy->work_ns_median),
                                     static_cast<double>(prefetch.work_ns_median)),
                      .after_open = 0});
  }
  return ratios;
}

// Per clone count: lazy first instruction, largest size over smallest
// (DESIGN section 10 wants restore as flat in RAM as clone: at most 2x).
std::vector<RestoreRatio> lazy_flatness(const RestoreBenchReport& report) {
  std::vector<RestoreRatio> ratios;
  if (report.snapshots.empty()) return ratios;
  uint64_t smallest = ~uint64_t{0};
  uint64_t largest = 0;
  for (const RestoreSnapshotRow& snapshot : report.snapshots) {
    smallest = std::min(smallest, snapshot.ram_bytes);
    largest = std::max(largest, snapshot.ram_bytes);
  }
  for (const RestoreBenchRow& high : report.rows) {
    if (high.mode != RestoreMode::kLazy || high.ram_bytes != largest) continue;
    const RestoreBenchRow* low = find_row(report, smallest, high.clones, RestoreMode::kLazy);
    if (low == nullptr) continue;
    ratios.push_back({.ram_bytes = largest,
                      .smallest_ram_bytes = smallest,
                      .clones = high.clones,
                      .value = ratio(static_cast<double>(high.first_ns_median),
                                     static_cast<double>(low->first_ns_median)),
                      .after_open = ratio(static_cast<double>(high.first_after_open_ns_median),
                                          static_cast<double>(low->first_after_open_ns_median))});
  }
  return ratios;
}

double hundredths(double value) {
  return std::round(value * 100) / 100;
}

// Ratios of rates that may be far below 1 (soft / native): 4 significant
// digits.
double significant4(double value) {
  if (value <= 0) return 0;
  const double scale = std::pow(10.0, 3 - std::floor(std::log10(value)));
  return std::round(value * scale) / scale;
}

nlohmann::json mix_json(const MixBenchReport& mix) {
  auto one_decimal = [](double value) { return std::round(value * 10) / 10; };
  nlohmann::json out = {
      {"guest", mix.guest.string()},
      {"guest_iterations", mix.guest_iterations},
      {"crc", fmt::format("{:#06x}", mix.crc)},
      {"host_iterations", mix.host_iterations},
      {"soft_iterations_per_sec", one_decimal(mix.soft_per_sec)},
      {"engine_iterations_per_sec", nullptr},
      {"native_iterations_per_sec", one_decimal(mix.native_per_sec)},
      {"qemu", nullptr},
      {"qemu_iterations_per_sec", nullptr},
      {"soft_over_native", significant4(ratio(mix.soft_per_sec, mix.native_per_sec))},
      {"soft_over_qemu", nullptr},
      {"engine_over_native", nullptr}};
  if (mix.engine_per_sec) {
    out["engine_iterations_per_sec"] = one_decimal(*mix.engine_per_sec);
    out["engine_over_native"] = significant4(ratio(*mix.engine_per_sec, mix.native_per_sec));
  }
  if (mix.qemu) out["qemu"] = mix.qemu->string();
  if (mix.qemu_per_sec) {
    out["qemu_iterations_per_sec"] = one_decimal(*mix.qemu_per_sec);
    out["soft_over_qemu"] = significant4(ratio(mix.soft_per_sec, *mix.qemu_per_sec));
  }
  return out;
}

void print_mix_table(const MixBenchReport& mix, Engine engine, std::FILE* out) {
  fmt::print(out,
             "mix ({}: lists, matrices, a state machine, CRC-16; {} iterations, crc {:#06x}):\n",
             mix.guest.string(), mix.guest_iterations, mix.crc);
  fmt::print(out, "  soft engine:            {:>12.1f} iterations/s\n", mix.soft_per_sec);
  if (mix.engine_per_sec) {
    fmt::print(out, "  {:<22} {:>12.1f} iterations/s  ({} / native: {:.4g})\n",
               fmt::format("{} engine:", to_string(engine)), *mix.engine_per_sec, to_string(engine),
               ratio(*mix.engine_per_sec, mix.native_per_sec));
  }
  fmt::print(out, "  native (same C code):   {:>12.1f} iterations/s  (soft / native: {:.4g})\n",
             mix.native_per_sec, ratio(mix.soft_per_sec, mix.native_per_sec));
  if (mix.qemu_per_sec) {
    fmt::print(out, "  qemu-x86_64 (user TCG): {:>12.1f} iterations/s  (soft / qemu: {:.4g})\n",
               *mix.qemu_per_sec, ratio(mix.soft_per_sec, *mix.qemu_per_sec));
  } else {
    fmt::print(out, "  qemu-x86_64: not installed (soft / qemu: -)\n");
  }
  fmt::print(out, "  native and qemu ran {} iterations, the guest {}\n", mix.host_iterations,
             mix.guest_iterations);
}

// The 2-thread fault rate's gain over 1 thread, as a fraction of the gain
// plain 4 KiB copies of the same pages make in the same run (issue 13 part 4):
// what the protocol keeps of the machine's own scaling.
double cow_scaling_over_plain_copy(const CowBenchReport& report) {
  return ratio(ratio(report.threads[1].faults_per_sec, report.threads[0].faults_per_sec),
               report.plain_copy_rate_2_over_1);
}

}  // namespace

nlohmann::json to_json(const CloneBenchReport& report) {
  nlohmann::json results = nlohmann::json::array();
  for (const CloneBenchRow& row : report.rows) {
    nlohmann::json entry = {
        {"ram_bytes", row.ram_bytes},
        {"clone_ns_median", row.clone_ns_median},
        {"linux_fork_ns_median", nullptr},
        {"clone_ns_min", row.clone_ns_min},
        {"populate_ms", tenths(static_cast<double>(row.populate_ns) * 1e-6)},
        {"fork_over_clone", nullptr},
    };
    if (row.linux_fork_ns_median) {
      entry["linux_fork_ns_median"] = *row.linux_fork_ns_median;
      entry["fork_over_clone"] = tenths(ratio(static_cast<double>(*row.linux_fork_ns_median),
                                              static_cast<double>(row.clone_ns_median)));
    }
    results.push_back(std::move(entry));
  }
  return {{"results", std::move(results)},
          {"clone_max_over_min", std::round(clone_flatness(report) * 100) / 100}};
}

nlohmann::json to_json(const CowBenchReport& report) {
  nlohmann::json threads = nlohmann::json::array();
  for (const CowThreadsRow& row : report.threads) {
    threads.push_back({
        {"threads", row.threads},
        {"ns_per_fault_median", tenths(row.ns_per_fault_median)},
        {"faults_per_sec", std::llround(row.faults_per_sec)},
        {"acking_vcpus", row.acking_vcpus},
        {"faults_per_thread", row.faults_per_thread},
        {"shootdowns_per_fault", std::round(row.shootdowns_per_fault * 100) / 100},
    });
  }
  nlohmann::json json = {
      {"threads", std::move(threads)},
      {"kernel_cow_ns_per_fault_median", tenths(report.kernel_cow_ns_per_fault_median)},
      {"ram_bytes", report.ram_bytes},
      {"rounds", report.rounds},
  };
  if (!report.threads.empty()) {
    json["kernel_over_ours"] = std::round(ratio(report.kernel_cow_ns_per_fault_median,
                                                report.threads.front().ns_per_fault_median) *
                                          100) /
                               100;
  }
  if (report.threads.size() >= 2) {
    json["rate_2_over_1"] =
        std::round(ratio(report.threads[1].faults_per_sec, report.threads[0].faults_per_sec) *
                   100) /
        100;
    json["plain_copy_rate_2_over_1"] = std::round(report.plain_copy_rate_2_over_1 * 100) / 100;
    json["scaling_over_plain_copy"] = std::round(cow_scaling_over_plain_copy(report) * 100) / 100;
  }
  return json;
}

void print_table(const CloneBenchReport& report, std::FILE* out) {
  fmt::print(out, "{:>10}  {:>12}  {:>14}  {:>12}  {:>18}  {:>11}\n", "guest RAM", "map pages",
             "clone median", "clone min", "Linux fork median", "fork/clone");
  for (const CloneBenchRow& row : report.rows) {
    const std::string fork =
        row.linux_fork_ns_median ? human_ns(static_cast<double>(*row.linux_fork_ns_median)) : "-";
    const std::string speedup =
        row.linux_fork_ns_median
            ? fmt::format("{:.0f}x", ratio(static_cast<double>(*row.linux_fork_ns_median),
                                           static_cast<double>(row.clone_ns_median)))
            : "-";
    fmt::print(out, "{:>10}  {:>12}  {:>14}  {:>12}  {:>18}  {:>11}\n",
               cli::format_size(row.ram_bytes), human_ns(static_cast<double>(row.populate_ns)),
               human_ns(static_cast<double>(row.clone_ns_median)),
               human_ns(static_cast<double>(row.clone_ns_min)), fork, speedup);
  }
  fmt::print(out, "clone median, largest over smallest: {:.2f}x (target: at most 2x)\n",
             clone_flatness(report));
  fmt::print(out, "fork/clone target: at least 1000x\n");
}

void print_table(const CowBenchReport& report, std::FILE* out) {
  fmt::print(out, "COW faults on a {} snapshotted space, median of {} rounds\n",
             cli::format_size(report.ram_bytes), report.rounds);
  fmt::print(out, "{:>16}  {:>12}  {:>14}  {:>14}  {:>14}\n", "faulting threads", "acking vCPUs",
             "per fault", "faults/s", "shootdowns/fault");
  for (const CowThreadsRow& row : report.threads) {
    fmt::print(out, "{:>16}  {:>12}  {:>14}  {:>14.0f}  {:>14.2f}\n", row.threads, row.acking_vcpus,
               human_ns(row.ns_per_fault_median), row.faults_per_sec, row.shootdowns_per_fault);
  }
  fmt::print(out, "kernel anonymous COW fault: {}\n",
             human_ns(report.kernel_cow_ns_per_fault_median));
  if (!report.threads.empty()) {
    fmt::print(
        out, "kernel / ours (1 thread): {:.2f}x (target: at least 5x)\n",
        ratio(report.kernel_cow_ns_per_fault_median, report.threads.front().ns_per_fault_median));
  }
  if (report.threads.size() >= 2) {
    fmt::print(out, "fault rate, 2 threads / 1: {:.2f}x (target: at least 1.7x)\n",
               ratio(report.threads[1].faults_per_sec, report.threads[0].faults_per_sec));
    fmt::print(out, "plain page copies, 2 threads / 1: {:.2f}x (this machine's ceiling)\n",
               report.plain_copy_rate_2_over_1);
    fmt::print(out, "our scaling / the ceiling's: {:.2f} (target: at least 0.9)\n",
               cow_scaling_over_plain_copy(report));
  }
}

nlohmann::json to_json(const ForkBenchReport& report) {
  nlohmann::json results = nlohmann::json::array();
  for (const ForkBenchRow& row : report.rows) {
    nlohmann::json entry = {
        {"ram_bytes", row.ram_bytes},           {"clones", row.clones},
        {"fork_ns_median", row.fork_ns_median}, {"linux_fork_ns_median", nullptr},
        {"fork_ns_max", row.fork_ns_max},
    };
    if (row.linux_fork_ns_median) entry["linux_fork_ns_median"] = *row.linux_fork_ns_median;
    if (row.soft_fork_ns_median) {
      entry["soft_fork_ns_median"] = *row.soft_fork_ns_median;
      entry["engine_over_soft"] = tenths(ratio(static_cast<double>(row.fork_ns_median),
                                               static_cast<double>(*row.soft_fork_ns_median)));
    }
    entry["pause_ns_median"] = row.pause_ns_median;
    entry["snapshot_ns_median"] = row.snapshot_ns_median;
    entry["build_ns_median"] = row.build_ns_median;
    entry["build_per_clone_ns_median"] = row.build_per_clone_ns_median;
    entry["start_ns_median"] = row.start_ns_median;
    if (report.kvm_create_ns_median) {
      const double create = static_cast<double>(*report.kvm_create_ns_median);
      entry["engine_over_kvm_create"] =
          tenths(ratio(static_cast<double>(row.fork_ns_median), create));
      // What building one clone costs beyond the kernel's own VM and vCPU.
      entry["build_per_clone_over_kvm_create"] =
          hundredths(ratio(static_cast<double>(row.build_per_clone_ns_median), create));
    }
    results.push_back(std::move(entry));
  }
  nlohmann::json out = {{"engine", to_string(report.engine)}, {"results", std::move(results)}};
  if (report.kvm_create_ns_median) out["kvm_create_vm_ns_median"] = *report.kvm_create_ns_median;
  nlohmann::json idle = nlohmann::json::array();
  for (const CloneMemoryReport& clone : report.idle) {
    idle.push_back({{"engine", to_string(clone.engine)},
                    {"ram_bytes", clone.ram_bytes},
                    {"clones", clone.clones},
                    {"pss_bytes", clone.pss_bytes},
                    {"kernel_bytes", clone.kernel_bytes},
                    {"private_data_frames", clone.private_data_frames},
                    {"private_table_frames", clone.private_table_frames},
                    {"host_mappings", clone.host_mappings ? nlohmann::json(*clone.host_mappings)
                                                          : nlohmann::json(nullptr)}});
  }
  out["idle_clone_memory"] = std::move(idle);
  return out;
}

nlohmann::json to_json(const CpuBenchReport& report) {
  auto one_decimal = [](double value) { return std::round(value * 10) / 10; };
  nlohmann::json out = {
      {"engine", to_string(report.engine)},
      {"mips", one_decimal(report.mips)},
      {"instructions", report.instructions},
      {"host_mips", one_decimal(report.host_mips)},
      {"engine_over_host", std::round(ratio(report.mips, report.host_mips) * 1000) / 1000},
      {"soft_mips", nullptr},
      {"engine_over_soft", nullptr}};
  if (report.soft_mips) {
    out["soft_mips"] = one_decimal(*report.soft_mips);
    out["engine_over_soft"] = one_decimal(ratio(report.mips, *report.soft_mips));
  }
  out["mix"] = mix_json(report.mix);
  return out;
}

namespace {

// The fork table: the latency and Linux's, then where the engine's time
// went, and (kvm) the build per clone over a bare KVM_CREATE_VM + VCPU.
void print_fork_header(const ForkBenchReport& report, std::FILE* out) {
  fmt::print(out, "{:>10}  {:>7}  {:>14}  {:>14}  {:>18}  {:>10}  {:>10}  {:>10}  {:>11}  {:>10}",
             "guest RAM", "clones", "fork median", "fork max", "Linux fork median", "pause",
             "snapshot", "build", "build/clone", "start");
  if (report.kvm_create_ns_median) fmt::print(out, "  {:>24}", "build/clone / KVM create");
  fmt::print(out, "\n");
}

void print_fork_row(const ForkBenchReport& report, const ForkBenchRow& row, std::FILE* out) {
  const std::string linux_fork =
      row.linux_fork_ns_median ? human_ns(static_cast<double>(*row.linux_fork_ns_median)) : "-";
  fmt::print(out, "{:>10}  {:>7}  {:>14}  {:>14}  {:>18}  {:>10}  {:>10}  {:>10}  {:>11}  {:>10}",
             cli::format_size(row.ram_bytes), row.clones,
             human_ns(static_cast<double>(row.fork_ns_median)),
             human_ns(static_cast<double>(row.fork_ns_max)), linux_fork,
             human_ns(static_cast<double>(row.pause_ns_median)),
             human_ns(static_cast<double>(row.snapshot_ns_median)),
             human_ns(static_cast<double>(row.build_ns_median)),
             human_ns(static_cast<double>(row.build_per_clone_ns_median)),
             human_ns(static_cast<double>(row.start_ns_median)));
  if (report.kvm_create_ns_median) {
    fmt::print(out, "  {:>23.2f}x",
               ratio(static_cast<double>(row.build_per_clone_ns_median),
                     static_cast<double>(*report.kvm_create_ns_median)));
  }
  fmt::print(out, "\n");
}

}  // namespace

void print_table(const ForkBenchReport& report, std::FILE* out) {
  print_fork_header(report, out);
  for (const ForkBenchRow& row : report.rows)
    print_fork_row(report, row, out);
  fmt::print(out,
             "fork on the {} engine: from the guest's request (out 0x510) to each clone's first "
             "instruction\n",
             to_string(report.engine));
  fmt::print(out,
             "pause, snapshot, build: medians per fork (build/clone = build / clones); start: "
             "from the end of the build to each clone's first instruction, median over clones\n");
  for (const ForkBenchRow& row : report.rows) {
    if (!row.soft_fork_ns_median) continue;
    fmt::print(out, "{} with {} clone(s): soft engine in the same run {} ({} / soft: {:.1f}x)\n",
               cli::format_size(row.ram_bytes), row.clones,
               human_ns(static_cast<double>(*row.soft_fork_ns_median)), to_string(report.engine),
               ratio(static_cast<double>(row.fork_ns_median),
                     static_cast<double>(*row.soft_fork_ns_median)));
  }
  if (report.kvm_create_ns_median) {
    fmt::print(out, "one bare KVM_CREATE_VM + KVM_CREATE_VCPU on this host: {}\n",
               human_ns(static_cast<double>(*report.kvm_create_ns_median)));
  }
  for (const CloneMemoryReport& clone : report.idle) {
    fmt::print(
        out,
        "{} idle clones of a {} VM on the {} engine, each: {:.1f} KiB of the process's "
        "PSS, {:.1f} KiB of the kernel's slab and vmalloc (host-wide), {} private data "
        "frame(s) and {} private table frame(s){}\n",
        clone.clones, cli::format_size(clone.ram_bytes), to_string(clone.engine),
        static_cast<double>(clone.pss_bytes) / 1024, static_cast<double>(clone.kernel_bytes) / 1024,
        clone.private_data_frames, clone.private_table_frames,
        clone.host_mappings ? fmt::format(", {} host mapping(s)", *clone.host_mappings) : "");
  }
}

void print_table(const CpuBenchReport& report, std::FILE* out) {
  fmt::print(out, "{} engine, integer loop on 1 vCPU: {:.1f} MIPS{}\n", to_string(report.engine),
             report.mips, report.engine == Engine::kSoft ? " (target: at least 100)" : "");
  fmt::print(out, "the same loop natively on the host: {:.1f} MIPS ({} engine / host: {:.3f})\n",
             report.host_mips, to_string(report.engine), ratio(report.mips, report.host_mips));
  if (report.soft_mips) {
    fmt::print(out, "soft engine in the same run: {:.1f} MIPS ({} / soft: {:.1f}x)\n",
               *report.soft_mips, to_string(report.engine), ratio(report.mips, *report.soft_mips));
  }
  print_mix_table(report.mix, report.engine, out);
}

nlohmann::json to_json(const RestoreBenchReport& report) {
  nlohmann::json snapshots = nlohmann::json::array();
  for (const RestoreSnapshotRow& row : report.snapshots) {
    snapshots.push_back({{"ram_bytes", row.ram_bytes},
                         {"pause_ns", row.pause_ns},
                         {"write_ns", row.write_ns},
                         {"pages", row.pages},
                         {"working_set_chunks", row.working_set_chunks},
                         {"state_json_bytes", row.state_bytes},
                         {"state_json_read_ns", row.state_read_ns},
                         {"state_json_parse_ns", row.state_json_parse_ns},
                         {"state_json_check_ns", row.state_check_ns}});
  }
  nlohmann::json results = nlohmann::json::array();
  for (const RestoreBenchRow& row : report.rows) {
    results.push_back({{"ram_bytes", row.ram_bytes},
                       {"clones", row.clones},
                       {"mode", to_string(row.mode)},
                       {"first_instruction_ns_median", row.first_ns_median},
                       {"first_instruction_ns_max", row.first_ns_max},
                       {"first_instruction_after_open_ns_median", row.first_after_open_ns_median},
                       {"work_ns_median", row.work_ns_median},
                       {"open_ns_median", row.open_ns_median},
                       {"read_ns_median", row.read_ns_median},
                       {"build_ns_median", row.build_ns_median}});
  }
  auto by_size = [](const std::vector<RestoreRatio>& ratios) {
    nlohmann::json out = nlohmann::json::array();
    for (const RestoreRatio& entry : ratios) {
      out.push_back({{"ram_bytes", entry.ram_bytes},
                     {"clones", entry.clones},
                     {"ratio", hundredths(entry.value)}});
    }
    return out;
  };
  const std::vector<RestoreRatio> eager_ratios = eager_over_lazy(report);
  nlohmann::json eager = by_size(eager_ratios);
  for (size_t i = 0; i < eager_ratios.size(); ++i)
    eager[i]["ratio_after_open"] = hundredths(eager_ratios[i].after_open);
  nlohmann::json flatness = nlohmann::json::array();
  for (const RestoreRatio& entry : lazy_flatness(report)) {
    flatness.push_back({{"largest_ram_bytes", entry.ram_bytes},
                        {"smallest_ram_bytes", entry.smallest_ram_bytes},
                        {"clones", entry.clones},
                        {"ratio", hundredths(entry.value)},
                        {"ratio_after_open", hundredths(entry.after_open)}});
  }
  return {{"engine", to_string(report.engine)},
          {"work_pages", report.work_pages},
          {"repeat", report.repeat},
          {"snapshots", std::move(snapshots)},
          {"results", std::move(results)},
          {"ratios",
           {{"eager_over_lazy_first_instruction", std::move(eager)},
            {"lazy_first_instruction_largest_over_smallest", std::move(flatness)},
            {"lazy_over_prefetch_work", by_size(lazy_over_prefetch(report))}}}};
}

void print_table(const RestoreBenchReport& report, std::FILE* out) {
  fmt::print(out,
             "restore on the {} engine: from just before open_snapshot to each clone's first "
             "instruction, and to every clone done ({} page(s) read and written each); {} "
             "repeat(s)\n",
             to_string(report.engine), report.work_pages, report.repeat);
  fmt::print(out, "{:>10}  {:>7}  {:>8}  {:>12}  {:>12}  {:>12}  {:>12}  {:>10}  {:>10}  {:>10}\n",
             "guest RAM", "clones", "mode", "first median", "first max", "median-open", "all done",
             "open", "read", "build");
  for (const RestoreBenchRow& row : report.rows) {
    fmt::print(
        out, "{:>10}  {:>7}  {:>8}  {:>12}  {:>12}  {:>12}  {:>12}  {:>10}  {:>10}  {:>10}\n",
        cli::format_size(row.ram_bytes), row.clones, to_string(row.mode),
        human_ns(static_cast<double>(row.first_ns_median)),
        human_ns(static_cast<double>(row.first_ns_max)),
        human_ns(static_cast<double>(row.first_after_open_ns_median)),
        human_ns(static_cast<double>(row.work_ns_median)),
        human_ns(static_cast<double>(row.open_ns_median)),
        row.mode == RestoreMode::kEager ? human_ns(static_cast<double>(row.read_ns_median)) : "-",
        human_ns(static_cast<double>(row.build_ns_median)));
  }
  for (const RestoreSnapshotRow& row : report.snapshots) {
    fmt::print(out,
               "snapshot of {}: paused {}, written in {} ({} pages); working set {} chunk(s) of "
               "64 KiB; state.json {} KiB: read {}, JSON parse {}, parse_state_json {}\n",
               cli::format_size(row.ram_bytes), human_ns(static_cast<double>(row.pause_ns)),
               human_ns(static_cast<double>(row.write_ns)), row.pages, row.working_set_chunks,
               row.state_bytes >> 10, human_ns(static_cast<double>(row.state_read_ns)),
               human_ns(static_cast<double>(row.state_json_parse_ns)),
               human_ns(static_cast<double>(row.state_check_ns)));
  }
  for (const RestoreRatio& entry : eager_over_lazy(report)) {
    fmt::print(out,
               "eager / lazy, first instruction, {} x{}: {:.1f}x; less open_snapshot: {:.1f}x\n",
               cli::format_size(entry.ram_bytes), entry.clones, entry.value, entry.after_open);
  }
  for (const RestoreRatio& entry : lazy_flatness(report)) {
    fmt::print(out,
               "lazy first instruction, {} / {}, x{}: {:.2f}x (target: at most 2x); less "
               "open_snapshot: {:.2f}x\n",
               cli::format_size(entry.ram_bytes), cli::format_size(entry.smallest_ram_bytes),
               entry.clones, entry.value, entry.after_open);
  }
  for (const RestoreRatio& entry : lazy_over_prefetch(report)) {
    fmt::print(out, "lazy / prefetch, all done, {} x{}: {:.2f}x\n",
               cli::format_size(entry.ram_bytes), entry.clones, entry.value);
  }
}

}  // namespace vmfork::bench
