#include "vmm/bench/bench_command.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vmm/bench/bench_charts.h"
#include "vmm/bench/clone_bench.h"
#include "vmm/bench/cow_bench.h"
#include "vmm/bench/plot_file.h"
#include "vmm/bench/report.h"
#include "vmm/bench/restore_bench.h"
#include "vmm/cli/choice_arg.h"
#include "vmm/cli/size_arg.h"

namespace vmfork::bench {

namespace {

enum class OutputFormat : uint8_t { kTable, kJson };

int fail(const Error& error) {
  // Errors are always shown, whatever the log level.
  fmt::print(stderr, "vmfork: {} ({})\n", error.message, to_string(error.code));
  return 1;
}

template <class Report>
int emit(const Result<Report>& report, OutputFormat format) {
  if (!report) return fail(report.error());
  if (format == OutputFormat::kJson) {
    // Exactly one JSON object on stdout; logs went to stderr.
    fmt::print(stdout, "{}\n", to_json(report.value()).dump(2));
  } else {
    print_table(report.value(), stdout);
  }
  std::fflush(stdout);
  return 0;
}

// Runs a bench and prints its report; with --plot (a non-empty
// `plot_path`), also draws `chart` of the same report into that file, which
// is opened first: an unwritable path fails before the bench runs.
template <class Run, class Draw>
int emit_with_plot(Run run, OutputFormat format, const std::string& plot_path, Draw chart) {
  std::optional<PlotFile> plot;
  if (!plot_path.empty()) {
    Result<PlotFile> opened = PlotFile::open(plot_path);
    if (!opened) return fail(opened.error());
    plot.emplace(std::move(*opened));
  }
  const auto report = run();
  if (const int status = emit(report, format); status != 0 || !plot) return status;
  if (Result<void> written = plot->write(render_svg(chart(report.value()))); !written) {
    return fail(written.error());
  }
  return 0;
}

void add_plot_option(CLI::App& command, std::string& path) {
  command
      .add_option("--plot", path,
                  "Also draw the results as an SVG chart into FILE (latency against guest RAM, "
                  "log scales where the data spans decades); FILE is opened before the bench "
                  "runs")
      ->type_name("FILE.svg");
}

struct CloneArgs {
  CloneBenchOptions options{
      .sizes = {uint64_t{64} << 20, uint64_t{1} << 30, uint64_t{4} << 30, uint64_t{16} << 30}};
  bool json = false;
};

struct ForkArgs {
  ForkBenchOptions options{.sizes = {uint64_t{64} << 20, uint64_t{1} << 30, uint64_t{4} << 30},
                           .clones = {1, 8, 64}};
  bool json = false;
  std::string plot;  // --plot: empty for none
};

struct RestoreArgs {
  RestoreBenchOptions options{.sizes = {uint64_t{64} << 20, uint64_t{1} << 30, uint64_t{4} << 30},
                              .clones = {1, 8, 64}};
  bool json = false;
  std::string plot;  // --plot: empty for none
};

struct CpuArgs {
  CpuBenchOptions options;
  bool json = false;
};

struct CowArgs {
  CowBenchOptions options;
  bool json = false;
};

OutputFormat format_of(bool json) {
  return json ? OutputFormat::kJson : OutputFormat::kTable;
}

void add_clone(CLI::App& bench, Command& chosen) {
  auto args = std::make_shared<CloneArgs>();
  CLI::App* clone = bench.add_subcommand(
      "clone",
      "Clone latency of a fully mapped guest address space, by RAM size: every page is mapped "
      "to a frame, then AddressSpace::clone is timed --repeat times (each clone destroyed "
      "before the next) and the median reported. In the same run, Linux fork() of a process "
      "with the same amount of anonymous memory touched (4 KiB pages) is timed --fork-repeat "
      "times, for sizes up to --fork-max (null above).");
  clone->fallthrough();
  clone
      ->add_option("--sizes", args->options.sizes,
                   "Guest RAM sizes, comma-separated, K/M/G/T suffixes, multiples of 4 KiB, at "
                   "most 8T; a size whose page tables and frame table (16 bytes per 4 KiB) do "
                   "not fit the host's available memory is refused (default: 64M,1G,4G,16G)")
      ->delimiter(',')
      ->transform(cli::size_transform())
      ->type_name("SIZE");
  clone->add_option("--repeat", args->options.repeat, "Clones timed per size (default: 101)")
      ->type_name("N")
      ->check(CLI::Range(1, 1'000'000));
  clone
      ->add_option("--fork-repeat", args->options.fork_repeat,
                   "fork() calls timed per size (default: 11)")
      ->type_name("N")
      ->check(CLI::Range(1, 10'000));
  clone
      ->add_option("--fork-max", args->options.fork_max_bytes,
                   "Largest size with a Linux fork baseline (default: 1G)")
      ->transform(cli::size_transform())
      ->type_name("SIZE");
  clone->add_flag("--json", args->json,
                  "Print one JSON object: {\"results\":[{\"ram_bytes\",\"clone_ns_median\","
                  "\"linux_fork_ns_median\" (null above --fork-max), ...}], ...}");
  clone->callback([args, &chosen] {
    chosen = [args] { return emit(run_clone_bench(args->options), format_of(args->json)); };
  });
}

void add_cow(CLI::App& bench, Command& chosen) {
  auto args = std::make_shared<CowArgs>();
  CLI::App* cow = bench.add_subcommand(
      "cow",
      "COW fault service time per 4 KiB page through the full protocol (copy, two-stage "
      "publish, INVEPT shootdown acknowledged by every other running vCPU). A space of --size "
      "is written and snapshotted; each faulting thread then writes one word to every page of "
      "its own half. Measured with 1 faulting thread plus 1 running vCPU that acknowledges, "
      "and with 2 faulting threads that acknowledge each other (never more busy threads than "
      "2); median of --rounds rounds each. In the same run, the kernel's anonymous COW fault "
      "(a forked child keeps every page shared), median of --kernel-repeat runs.");
  cow->fallthrough();
  cow->add_option("--size", args->options.ram_bytes,
                  "Size of the snapshotted space, and of the kernel baseline's memory, K/M/G/T "
                  "suffixes, at least 16K (default: 64M)")
      ->transform(cli::size_transform())
      ->type_name("SIZE");
  cow->add_option("--rounds", args->options.rounds,
                  "Timed rounds per thread count, each on a fresh space (default: 11)")
      ->type_name("N")
      ->check(CLI::Range(1, 100'000));
  cow->add_option("--kernel-repeat", args->options.kernel_repeat,
                  "Runs of the kernel COW baseline (default: 11)")
      ->type_name("N")
      ->check(CLI::Range(1, 10'000));
  cow->add_flag("--json", args->json,
                "Print one JSON object: {\"threads\":[{\"threads\",\"ns_per_fault_median\","
                "\"faults_per_sec\", ...}], \"kernel_cow_ns_per_fault_median\", ...}");
  cow->callback([args, &chosen] {
    chosen = [args] { return emit(run_cow_bench(args->options), format_of(args->json)); };
  });
}

void add_engine_option(CLI::App& command, Engine& engine) {
  command
      .add_option("--engine", engine,
                  "soft, or kvm (needs /dev/kvm; under nested TCG its timings are not "
                  "meaningful) (default: soft)")
      ->transform(cli::choice_transform<Engine>({{"soft", Engine::kSoft}, {"kvm", Engine::kKvm}}))
      ->type_name("soft|kvm");
}

void add_fork(CLI::App& bench, Command& chosen) {
  auto args = std::make_shared<ForkArgs>();
  CLI::App* fork = bench.add_subcommand(
      "fork",
      "End-to-end fork latency on --engine: a 1-vCPU VM with every page of its RAM "
      "mapped asks for N clones through the fork port (out 0x510); the latency of each clone "
      "runs from that request to the clone's first guest instruction. Median over every clone "
      "of --repeat forks, by RAM size and clone count. In the same run, Linux fork() of a "
      "process with the same memory touched, for sizes up to --fork-max (null above), and, "
      "for --engine kvm, the same forks on the soft engine and a bare KVM_CREATE_VM + "
      "KVM_CREATE_VCPU. Where the time went, medians per fork: pause (the request until every "
      "vCPU stood still), snapshot (vCPU and platform state, the O(1) memory snapshot), build "
      "(every clone's space, VM and threads; and per clone) and start (the end of the build "
      "to each clone's first instruction, median over clones).");
  fork->fallthrough();
  fork->add_option("--sizes", args->options.sizes,
                   "Guest RAM sizes, comma-separated, multiples of 2 MiB (default: 64M,1G,4G)")
      ->delimiter(',')
      ->transform(cli::size_transform())
      ->type_name("SIZE");
  fork->add_option("--clones", args->options.clones,
                   "Clone counts, comma-separated (default: 1,8,64)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256))
      ->type_name("N");
  fork->add_option("--repeat", args->options.repeat, "Forks per size and count (default: 5)")
      ->type_name("N")
      ->check(CLI::Range(1, 10'000));
  fork->add_option("--fork-repeat", args->options.fork_repeat,
                   "Linux fork() calls timed per size (default: 11)")
      ->type_name("N")
      ->check(CLI::Range(1, 10'000));
  fork->add_option("--fork-max", args->options.fork_max_bytes,
                   "Largest size with a Linux fork baseline (default: 1G)")
      ->transform(cli::size_transform())
      ->type_name("SIZE");
  fork->add_option("--idle-clones", args->options.idle_clones,
                   "Then the memory of N idle clones: a VM of --idle-mem with every page mapped, "
                   "paused, forked from outside into N clones, each paused; per clone, the "
                   "process's PSS, the host kernel's Slab + VmallocUsed, its private frames and "
                   "(kvm) host mappings; 0: skip (default: 64)")
      ->type_name("N")
      ->check(CLI::Range(0, 256));
  fork->add_option("--idle-mem", args->options.idle_ram_bytes,
                   "RAM of the VM whose idle clones are measured (default: 256M)")
      ->transform(cli::size_transform())
      ->type_name("SIZE");
  add_engine_option(*fork, args->options.engine);
  fork->add_flag("--json", args->json,
                 "Print one JSON object: {\"results\":[{\"ram_bytes\",\"clones\","
                 "\"fork_ns_median\",\"linux_fork_ns_median\" (null above --fork-max), "
                 "\"pause_ns_median\",\"snapshot_ns_median\",\"build_ns_median\","
                 "\"build_per_clone_ns_median\",\"start_ns_median\", "
                 "and for --engine kvm \"soft_fork_ns_median\",\"engine_over_soft\","
                 "\"engine_over_kvm_create\",\"build_per_clone_over_kvm_create\", ...}], "
                 "\"kvm_create_vm_ns_median\" (kvm), "
                 "\"idle_clone_memory\":[{\"engine\",\"ram_bytes\",\"clones\",\"pss_bytes\","
                 "\"kernel_bytes\",\"private_data_frames\",\"private_table_frames\","
                 "\"host_mappings\"} per clone, the engine's then (kvm) soft's]}");
  add_plot_option(*fork, args->plot);
  fork->callback([args, &chosen] {
    chosen = [args] {
      return emit_with_plot([&] { return run_fork_bench(args->options); }, format_of(args->json),
                            args->plot, fork_chart);
    };
  });
}

void add_cpu(CLI::App& bench, Command& chosen) {
  auto args = std::make_shared<CpuArgs>();
  CLI::App* cpu = bench.add_subcommand(
      "cpu",
      "Engine speed: a 1-vCPU guest runs an integer loop (add, xor, dec, jnz) on --engine; "
      "millions of guest instructions per second, median of --repeat runs. In the same run: "
      "the same loop natively on the host and, for --engine kvm, on the soft engine. Then "
      "realistic code: the guest guests/mix.elf (linked lists, small matrices, a state machine, "
      "CRC-16; a fixed iteration count) on the soft engine (and on --engine), the same C code "
      "natively in vmfork, and, when qemu-x86_64 is installed, bench/mix_native under it; "
      "iterations per second, medians of --repeat runs, and the ratios soft / native and "
      "soft / qemu.");
  cpu->fallthrough();
  cpu->add_option("--iterations", args->options.iterations,
                  "Loop iterations, 4 instructions each (default: 25000000)")
      ->type_name("N")
      ->check(CLI::Range(1u, 1'000'000'000u));
  cpu->add_option("--repeat", args->options.repeat, "Runs (default: 3)")
      ->type_name("N")
      ->check(CLI::Range(1, 1000));
  cpu->add_option("--mix-iterations", args->options.mix.host_iterations,
                  "Iterations of the mix natively and under qemu-x86_64 (the guest's are fixed "
                  "when it is built) (default: 20000)")
      ->type_name("N")
      ->check(CLI::Range(1u, 100'000'000u));
  cpu->add_option("--mix-guest", args->options.mix.guest,
                  "The mix guest (default: guests/mix.elf beside the vmfork binary)")
      ->type_name("PATH")
      ->check(CLI::ExistingFile);
  add_engine_option(*cpu, args->options.engine);
  cpu->add_flag("--json", args->json,
                "Print one JSON object: {\"engine\",\"mips\",\"host_mips\",\"engine_over_host\","
                "\"soft_mips\",\"engine_over_soft\" (null for --engine soft), \"mix\":{"
                "\"guest_iterations\",\"crc\",\"soft_iterations_per_sec\","
                "\"native_iterations_per_sec\",\"qemu_iterations_per_sec\",\"soft_over_native\","
                "\"soft_over_qemu\" (null without qemu-x86_64), ...}}");
  cpu->callback([args, &chosen] {
    chosen = [args] { return emit(run_cpu_bench(args->options), format_of(args->json)); };
  });
}

void add_restore(CLI::App& bench, Command& chosen) {
  auto args = std::make_shared<RestoreArgs>();
  CLI::App* restore = bench.add_subcommand(
      "restore",
      "Restore latency from a snapshot directory on --engine. Per RAM size, a 1-vCPU VM with "
      "every page of its RAM written snapshots itself (out 0x511) once into a temporary "
      "directory (removed at the end); N clones are then restored from it in a fresh monitor "
      "--repeat times per mode, and timed from just before the snapshot is opened to each "
      "clone's first instruction (median and max over every clone) and to every clone having "
      "done its work (a read-modify-write of one word in each of --work-pages pages spread "
      "over its RAM). Modes: lazy (64 KiB chunks of the memory file read on first touch), "
      "eager (the whole memory file read first), prefetch (lazy, the working set recorded by "
      "one lazy clone read in the background). Ratios in the same run: eager / lazy, lazy "
      "largest size / smallest, lazy / prefetch.");
  restore->fallthrough();
  restore
      ->add_option("--sizes", args->options.sizes,
                   "Guest RAM sizes, comma-separated, multiples of 2 MiB; a size whose warm VM "
                   "and eager restore do not fit the host's available memory is refused "
                   "(default: 64M,1G,4G)")
      ->delimiter(',')
      ->transform(cli::size_transform())
      ->type_name("SIZE");
  restore
      ->add_option("--clones", args->options.clones,
                   "Clone counts, comma-separated (default: 1,8,64)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256))
      ->type_name("N");
  restore
      ->add_option("--repeat", args->options.repeat,
                   "Restores per size, count and mode (default: 3)")
      ->type_name("N")
      ->check(CLI::Range(1, 10'000));
  restore
      ->add_option("--work-pages", args->options.work_pages,
                   "Pages each clone reads and writes one word of (default: 1024)")
      ->type_name("K")
      ->check(CLI::Range(1u, 1'000'000u));
  add_engine_option(*restore, args->options.engine);
  restore->add_flag("--json", args->json,
                    "Print one JSON object: {\"engine\",\"snapshots\":[{\"ram_bytes\","
                    "\"pause_ns\",\"write_ns\", ...}],\"results\":[{\"ram_bytes\",\"clones\","
                    "\"mode\",\"first_instruction_ns_median\",\"first_instruction_ns_max\","
                    "\"work_ns_median\", ...}],\"ratios\":{...}}");
  add_plot_option(*restore, args->plot);
  restore->callback([args, &chosen] {
    chosen = [args] {
      return emit_with_plot([&] { return run_restore_bench(args->options); }, format_of(args->json),
                            args->plot, restore_chart);
    };
  });
}

}  // namespace

void add_bench_command(CLI::App& app, Command& chosen) {
  CLI::App* bench = app.add_subcommand(
      "bench",
      "Benchmarks of the memory manager and the soft engine, with Linux baselines measured in "
      "the same run (DESIGN section 10)");
  bench->require_subcommand(1);
  bench->fallthrough();
  add_clone(*bench, chosen);
  add_cow(*bench, chosen);
  add_fork(*bench, chosen);
  add_cpu(*bench, chosen);
  add_restore(*bench, chosen);
}

}  // namespace vmfork::bench
