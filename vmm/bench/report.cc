#include "vmm/bench/report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <string>

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
    if (report.kvm_create_ns_median) {
      entry["engine_over_kvm_create"] =
          tenths(ratio(static_cast<double>(row.fork_ns_median),
                       static_cast<double>(*report.kvm_create_ns_median)));
    }
    results.push_back(std::move(entry));
  }
  nlohmann::json out = {{"engine", to_string(report.engine)}, {"results", std::move(results)}};
  if (report.kvm_create_ns_median) out["kvm_create_vm_ns_median"] = *report.kvm_create_ns_median;
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
  return out;
}

void print_table(const ForkBenchReport& report, std::FILE* out) {
  fmt::print(out, "{:>10}  {:>7}  {:>14}  {:>14}  {:>18}\n", "guest RAM", "clones", "fork median",
             "fork max", "Linux fork median");
  for (const ForkBenchRow& row : report.rows) {
    const std::string linux_fork =
        row.linux_fork_ns_median ? human_ns(static_cast<double>(*row.linux_fork_ns_median)) : "-";
    fmt::print(out, "{:>10}  {:>7}  {:>14}  {:>14}  {:>18}\n", cli::format_size(row.ram_bytes),
               row.clones, human_ns(static_cast<double>(row.fork_ns_median)),
               human_ns(static_cast<double>(row.fork_ns_max)), linux_fork);
  }
  fmt::print(out,
             "fork on the {} engine: from the guest's request (out 0x510) to each clone's first "
             "instruction\n",
             to_string(report.engine));
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
}

}  // namespace vmfork::bench
