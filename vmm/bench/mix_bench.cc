#include "vmm/bench/mix_bench.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "guests/mix/mix_work.h"
#include "vmm/bench/beside_binary.h"
#include "vmm/bench/host_program.h"
#include "vmm/bench/stats.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/clock.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/loader/read_file.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"

namespace vmfork::bench {

namespace {

// What the guest and mix_native print: "mix iterations <N> crc 0x<crc>".
struct MixLine {
  uint32_t iterations = 0;
  uint16_t crc = 0;
};

Result<MixLine> parse_mix_line(const std::string& output, const std::string& who) {
  const size_t at = output.find("mix iterations ");
  unsigned iterations = 0;
  unsigned crc = 0;
  if (at == std::string::npos ||
      std::sscanf(output.c_str() + at, "mix iterations %u crc 0x%x", &iterations, &crc) != 2 ||
      crc > 0xFFFF) {
    return make_error(
        ErrorCode::kInternal,
        fmt::format("{} printed no \"mix iterations N crc 0xCRC\" line: \"{}\"", who, output));
  }
  return MixLine{.iterations = iterations, .crc = static_cast<uint16_t>(crc)};
}

uint16_t native_crc(uint32_t iterations) {
  mix_workspace workspace{};
  return mix_run(&workspace, MIX_SEED, iterations);
}

struct GuestRun {
  double seconds = 0;
  MixLine line;
};

// One VM running the guest to its end, timed from the start of its vCPU to
// its end (thread start included, microseconds in a run of seconds).
Result<GuestRun> run_guest_once(Engine engine, std::span<const std::byte> elf,
                                const std::string& label) {
  constexpr uint64_t kRam = uint64_t{4} << 20;
  Result<GuestLayout> layout = GuestLayout::create(kRam, 1);
  if (!layout) return layout.error();
  Result<std::unique_ptr<Monitor>> monitor = Monitor::create(open_hypervisor, uint64_t{64} << 20);
  if (!monitor) return monitor.error();
  // The guest's line is read from its console journal: on stdout it would
  // break the one JSON object of --json.
  (*monitor)->set_console_echo(false);
  Result<std::unique_ptr<Vm>> vm = boot_elf(**monitor, engine, "mix", elf, *layout);
  if (!vm) return make_error(vm.error().code, label + ": " + vm.error().message);
  const std::shared_ptr<Journal> console = (*vm)->console_journal();
  const uint64_t start = now_ns();
  if (Result<void> launched = (*monitor)->launch(std::move(*vm)); !launched) {
    return launched.error();
  }
  const int status = (*monitor)->wait();
  const double seconds = static_cast<double>(now_ns() - start) * 1e-9;
  const std::string output = console->read(0, 1 << 16).bytes;
  if (status != 0) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("{} ended with status {} on the {} engine; its console: \"{}\"",
                                  label, status, to_string(engine), output));
  }
  Result<MixLine> line = parse_mix_line(output, label);
  if (!line) return line.error();
  return GuestRun{.seconds = seconds, .line = *line};
}

// The guest's median rate on `engine`, and the line it printed.
Result<double> guest_rate(Engine engine, std::span<const std::byte> elf, const std::string& label,
                          int repeat, MixLine& line) {
  std::vector<double> rates;
  for (int i = 0; i < repeat; ++i) {
    Result<GuestRun> run = run_guest_once(engine, elf, label);
    if (!run) return run.error();
    line = run->line;
    rates.push_back(static_cast<double>(run->line.iterations) / run->seconds);
    spdlog::info("cpu bench: mix on the {} engine, run {}: {:.1f} iterations/s", to_string(engine),
                 i, rates.back());
  }
  return median(std::move(rates));
}

double native_rate(uint32_t iterations, int repeat) {
  std::vector<double> rates;
  mix_workspace workspace{};
  for (int i = 0; i < repeat; ++i) {
    const uint64_t start = now_ns();
    (void)mix_run(&workspace, MIX_SEED, iterations);
    const double seconds = static_cast<double>(now_ns() - start) * 1e-9;
    rates.push_back(static_cast<double>(iterations) / seconds);
  }
  return median(std::move(rates));
}

// Under qemu-x86_64, timed from spawn to exit: qemu's start (milliseconds)
// is inside a run of about a second.
Result<double> qemu_rate(const std::filesystem::path& qemu, uint32_t iterations, int repeat,
                         uint16_t expected_crc) {
  const std::filesystem::path program = beside_binary("bench/mix_native");
  std::error_code error;
  if (!std::filesystem::is_regular_file(program, error)) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("{} not found: build the target mix_native (or guests) to time "
                                  "the mix under {}",
                                  program.string(), qemu.string()));
  }
  const std::vector<std::string> argv = {qemu.string(), program.string(),
                                         std::to_string(iterations)};
  const std::string label = fmt::format("{} {}", qemu.string(), program.string());
  std::vector<double> rates;
  for (int i = 0; i < repeat; ++i) {
    Result<ProgramRun> run = run_program(argv);
    if (!run) return run.error();
    if (run->exit_status != 0) {
      return make_error(ErrorCode::kInternal,
                        fmt::format("{} exited with status {}", label, run->exit_status));
    }
    Result<MixLine> line = parse_mix_line(run->output, label);
    if (!line) return line.error();
    if (line->iterations != iterations || line->crc != expected_crc) {
      return make_error(
          ErrorCode::kInternal,
          fmt::format("{} computed crc {:#x} for {} iterations; natively {:#x} for {}", label,
                      line->crc, line->iterations, expected_crc, iterations));
    }
    rates.push_back(static_cast<double>(iterations) / (static_cast<double>(run->ns) * 1e-9));
    spdlog::info("cpu bench: mix under qemu-x86_64, run {}: {:.1f} iterations/s", i, rates.back());
  }
  return median(std::move(rates));
}

}  // namespace

Result<MixBenchReport> run_mix_bench(const MixBenchOptions& options) {
  MixBenchReport report;
  report.guest = options.guest.empty() ? beside_binary("guests/mix.elf") : options.guest;
  report.host_iterations = options.host_iterations;
  const std::string label = report.guest.string();
  Result<std::vector<std::byte>> elf = read_file(report.guest);
  if (!elf) {
    return make_error(
        elf.error().code,
        elf.error().message + " (the mix guest: build the target guest_mix, or pass --mix-guest)");
  }

  report.native_per_sec = native_rate(options.host_iterations, options.repeat);
  MixLine line;
  Result<double> soft = guest_rate(Engine::kSoft, *elf, label, options.repeat, line);
  if (!soft) return soft.error();
  report.soft_per_sec = *soft;
  report.guest_iterations = line.iterations;
  report.crc = line.crc;
  // The guest checked its CRC against the constant it was built with; this
  // checks the engine against the host running the same C code.
  if (const uint16_t expected = native_crc(line.iterations); line.crc != expected) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("{} computed crc {:#x} for {} iterations on the soft engine; "
                                  "natively {:#x}",
                                  label, line.crc, line.iterations, expected));
  }
  if (options.engine != Engine::kSoft) {
    MixLine engine_line;
    Result<double> rate = guest_rate(options.engine, *elf, label, options.repeat, engine_line);
    if (!rate) return rate.error();
    if (engine_line.crc != line.crc) {
      return make_error(ErrorCode::kInternal,
                        fmt::format("{} computed crc {:#x} on the {} engine, {:#x} on soft", label,
                                    engine_line.crc, to_string(options.engine), line.crc));
    }
    report.engine_per_sec = *rate;
  }

  report.qemu = find_in_path("qemu-x86_64");
  if (!report.qemu) {
    spdlog::info("cpu bench: qemu-x86_64 is not installed: no qemu figure");
    return report;
  }
  Result<double> qemu = qemu_rate(*report.qemu, options.host_iterations, options.repeat,
                                  native_crc(options.host_iterations));
  if (!qemu) return qemu.error();
  report.qemu_per_sec = *qemu;
  return report;
}

}  // namespace vmfork::bench
