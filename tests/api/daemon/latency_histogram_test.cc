// vmm/api/latency_histogram.h (bucket bounds, cumulative counts) and
// prometheus_text of vmm/api/metrics.cc on a hand-made metrics object:
// histogram lines (+Inf, _sum, _count) and label escaping.
#include "vmm/api/latency_histogram.h"

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/text_lines.h"
#include "vmm/api/metrics.h"

namespace vmfork::api {
namespace {

TEST(LatencyHistogramTest, BoundsArePowersOfTwoFrom1024Ns) {
  EXPECT_EQ(LatencyHistogram::bound(0), 1024u);
  EXPECT_EQ(LatencyHistogram::bound(1), 2048u);
  EXPECT_EQ(LatencyHistogram::bound(LatencyHistogram::kBuckets - 1),
            uint64_t{1024} << (LatencyHistogram::kBuckets - 1));
}

TEST(LatencyHistogramTest, AValueOnABoundCountsInThatBucket) {
  LatencyHistogram histogram;
  histogram.add(1024);
  EXPECT_EQ(histogram.at_most(0), 1u);
  histogram.add(1025);
  EXPECT_EQ(histogram.at_most(0), 1u);
  EXPECT_EQ(histogram.at_most(1), 2u);
}

TEST(LatencyHistogramTest, CountsAreCumulative) {
  LatencyHistogram histogram;
  histogram.add(0);
  histogram.add(3000);    // <= 4096: bucket 2
  histogram.add(100000);  // <= 131072: bucket 7
  EXPECT_EQ(histogram.at_most(0), 1u);
  EXPECT_EQ(histogram.at_most(1), 1u);
  EXPECT_EQ(histogram.at_most(2), 2u);
  EXPECT_EQ(histogram.at_most(6), 2u);
  EXPECT_EQ(histogram.at_most(7), 3u);
  EXPECT_EQ(histogram.at_most(LatencyHistogram::kBuckets - 1), 3u);
  EXPECT_EQ(histogram.count(), 3u);
  EXPECT_EQ(histogram.sum_ns(), 103000u);
}

TEST(LatencyHistogramTest, AValueAboveTheLastBoundCountsOnlyInCountAndSum) {
  LatencyHistogram histogram;
  const uint64_t huge = LatencyHistogram::bound(LatencyHistogram::kBuckets - 1) + 1;
  histogram.add(huge);
  EXPECT_EQ(histogram.at_most(LatencyHistogram::kBuckets - 1), 0u);
  EXPECT_EQ(histogram.count(), 1u);
  EXPECT_EQ(histogram.sum_ns(), huge);
}

// A metrics object shaped as metrics_json makes it.
nlohmann::json metrics_with(const LatencyHistogram& fork, const std::string& vm_name) {
  const auto histogram_json = [](const LatencyHistogram& h) {
    nlohmann::json buckets = nlohmann::json::array();
    for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i)
      buckets.push_back({{"le_ns", LatencyHistogram::bound(i)}, {"count", h.at_most(i)}});
    return nlohmann::json{{"count", h.count()}, {"sum_ns", h.sum_ns()}, {"buckets", buckets}};
  };
  const LatencyHistogram empty;
  return {
      {"vms", {{"running", 1}, {"paused", 0}, {"exited", 0}, {"launched", 1}, {"failed", 0}}},
      {"pool_frames",
       {{"capacity", 10}, {"free", 5}, {"data", 4}, {"table", 1}, {"reclaiming", 0}}},
      {"faults", {{"faults", 7}}},
      {"latency",
       {{"fork", histogram_json(fork)},
        {"restore", histogram_json(empty)},
        {"snapshot_pause", histogram_json(empty)},
        {"snapshot_write", histogram_json(empty)}}},
      {"per_vm",
       {{vm_name,
         {{"faults", {{"faults", 7}}},
          {"frames", {{"private", 3}}},
          {"engine", nullptr},
          {"state", "Running"}}}}},
  };
}

using vmfork::testing::lines_of;

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text))
    if (l == line) return true;
  return false;
}

TEST(PrometheusTextTest, HistogramHasCumulativeBucketsInfSumAndCount) {
  LatencyHistogram fork;
  fork.add(1000);       // bucket 0 (<= 1.024 us)
  fork.add(1'500'000);  // <= 2097152 ns: bucket 11
  const std::string text = prometheus_text(metrics_with(fork, "vm0"));
  EXPECT_TRUE(has_line(text, "# TYPE vmfork_fork_seconds histogram")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_fork_seconds_bucket{le=\"0.000001024\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_fork_seconds_bucket{le=\"0.001048576\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_fork_seconds_bucket{le=\"0.002097152\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_fork_seconds_bucket{le=\"+Inf\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_fork_seconds_sum 0.001501000")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_fork_seconds_count 2")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_restore_seconds_bucket{le=\"+Inf\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_restore_seconds_count 0")) << text;
}

TEST(PrometheusTextTest, BucketsNeverDecrease) {
  LatencyHistogram fork;
  for (uint64_t ns = 1; ns < (uint64_t{1} << 36); ns *= 3)
    fork.add(ns);
  const std::string text = prometheus_text(metrics_with(fork, "vm0"));
  uint64_t last = 0;
  int buckets = 0;
  for (const std::string& line : lines_of(text)) {
    if (line.rfind("vmfork_fork_seconds_bucket{", 0) != 0) continue;
    const uint64_t value = std::stoull(line.substr(line.rfind(' ') + 1));
    EXPECT_GE(value, last) << line;
    last = value;
    ++buckets;
  }
  EXPECT_EQ(buckets, static_cast<int>(LatencyHistogram::kBuckets) + 1);
  EXPECT_EQ(last, fork.count());
}

TEST(PrometheusTextTest, StateGaugesAndTotals) {
  const std::string text = prometheus_text(metrics_with(LatencyHistogram{}, "vm0"));
  EXPECT_TRUE(has_line(text, "vmfork_vms{state=\"running\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_vms_launched_total 1")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_faults_total{kind=\"faults\"} 7")) << text;
  EXPECT_TRUE(has_line(text, "vmfork_vm_faults_total{vm=\"vm0\",kind=\"faults\"} 7")) << text;
  EXPECT_FALSE(has_line(text, "vmfork_vms{state=\"launched\"} 1")) << text;
}

TEST(PrometheusTextTest, LabelValuesEscapeQuoteBackslashAndNewline) {
  const std::string text = prometheus_text(metrics_with(LatencyHistogram{}, "a\"b\\c\nd"));
  EXPECT_TRUE(has_line(text, "vmfork_vm_faults_total{vm=\"a\\\"b\\\\c\\nd\",kind=\"faults\"} 7"))
      << text;
  EXPECT_TRUE(has_line(text, "vmfork_vm_frames{vm=\"a\\\"b\\\\c\\nd\",kind=\"private\"} 3"))
      << text;
}

}  // namespace
}  // namespace vmfork::api
