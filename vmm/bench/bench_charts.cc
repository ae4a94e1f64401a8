#include "vmm/bench/bench_charts.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vmm/cli/size_arg.h"

namespace vmfork::bench {

namespace {

// Ticks of a time axis in nanoseconds: on a log axis they are powers of
// ten, so "10 us" and "1 ms" rather than "10000 ns".
std::string time_tick(double ns) {
  if (ns >= 1e9) return fmt::format("{:g} s", ns * 1e-9);
  if (ns >= 1e6) return fmt::format("{:g} ms", ns * 1e-6);
  if (ns >= 1e3) return fmt::format("{:g} us", ns * 1e-3);
  return fmt::format("{:g} ns", ns);
}

// Ticks of a RAM axis in bytes: powers of two, which format_size prints
// exactly ("64 MiB", "4 GiB").
std::string size_tick(double bytes) {
  return cli::format_size(static_cast<uint64_t>(std::llround(bytes)));
}

Axis ram_axis(std::string label) {
  return Axis{
      .label = std::move(label), .scale = AxisScale::kLog, .log_base = 2, .tick_text = size_tick};
}

Axis latency_axis(std::string label) {
  return Axis{
      .label = std::move(label), .scale = std::nullopt, .log_base = 10, .tick_text = time_tick};
}

std::string clones_name(uint32_t clones) {
  return fmt::format("{} clone{}", clones, clones == 1 ? "" : "s");
}

// The clone counts of a report's rows, in the order they first appear
// (the order of --clones).
template <class Row>
std::vector<uint32_t> clone_counts(const std::vector<Row>& rows) {
  std::vector<uint32_t> counts;
  for (const Row& row : rows) {
    if (std::find(counts.begin(), counts.end(), row.clones) == counts.end()) {
      counts.push_back(row.clones);
    }
  }
  return counts;
}

double as_double(uint64_t value) {
  return static_cast<double>(value);
}

}  // namespace

Chart fork_chart(const ForkBenchReport& report) {
  Chart chart{.title = fmt::format("vmfork bench fork ({} engine)", to_string(report.engine)),
              .x = ram_axis("guest RAM (every page mapped)"),
              .y = latency_axis("fork latency, median (request to first instruction)"),
              .series = {}};
  const std::vector<uint32_t> counts = clone_counts(report.rows);
  for (size_t index = 0; index < counts.size(); ++index) {
    Series engine{.name = fmt::format("vmfork, {}", clones_name(counts[index])),
                  .points = {},
                  .style = LineStyle::kSolid,
                  .color = index};
    Series soft{.name = fmt::format("soft engine, {}", clones_name(counts[index])),
                .points = {},
                .style = LineStyle::kDashed,
                .color = index};
    for (const ForkBenchRow& row : report.rows) {
      if (row.clones != counts[index]) continue;
      engine.points.push_back({as_double(row.ram_bytes), as_double(row.fork_ns_median)});
      if (row.soft_fork_ns_median) {
        soft.points.push_back({as_double(row.ram_bytes), as_double(*row.soft_fork_ns_median)});
      }
    }
    chart.series.push_back(std::move(engine));
    if (!soft.points.empty()) chart.series.push_back(std::move(soft));
  }
  // One baseline per size, repeated in each of its rows.
  Series linux_fork{.name = "Linux fork(), same RAM touched",
                    .points = {},
                    .style = LineStyle::kDotted,
                    .color = 6};
  for (const ForkBenchRow& row : report.rows) {
    if (!row.linux_fork_ns_median) continue;
    const double ram = as_double(row.ram_bytes);
    if (!linux_fork.points.empty() && linux_fork.points.back().x == ram) continue;
    linux_fork.points.push_back({ram, as_double(*row.linux_fork_ns_median)});
  }
  if (!linux_fork.points.empty()) chart.series.push_back(std::move(linux_fork));
  return chart;
}

Chart restore_chart(const RestoreBenchReport& report) {
  Chart chart{.title = fmt::format("vmfork bench restore ({} engine)", to_string(report.engine)),
              .x = ram_axis("guest RAM (every page written before the snapshot)"),
              .y = latency_axis("restore latency, median (open to first instruction)"),
              .series = {}};
  const std::vector<uint32_t> counts = clone_counts(report.rows);
  for (size_t index = 0; index < counts.size(); ++index) {
    for (RestoreMode mode : kRestoreModes) {
      Series series{.name = fmt::format("{}, {}", to_string(mode), clones_name(counts[index])),
                    .points = {},
                    .style = mode == RestoreMode::kLazy    ? LineStyle::kSolid
                             : mode == RestoreMode::kEager ? LineStyle::kDashed
                                                           : LineStyle::kDotted,
                    .color = index};
      for (const RestoreBenchRow& row : report.rows) {
        if (row.clones != counts[index] || row.mode != mode) continue;
        series.points.push_back({as_double(row.ram_bytes), as_double(row.first_ns_median)});
      }
      if (!series.points.empty()) chart.series.push_back(std::move(series));
    }
  }
  return chart;
}

}  // namespace vmfork::bench
