// vmm/bench/svg_plot: the axis arithmetic (scale choice, ticks, ends,
// positions), XML escaping, and the document it renders: well-formed XML
// holding every series, label and legend entry.
#include "vmm/bench/svg_plot.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace vmfork::bench {
namespace {

constexpr double kMiB = 1 << 20;
constexpr double kGiB = 1 << 30;

size_t count_of(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++count;
  return count;
}

// A small well-formedness check, enough for what render_svg writes: every
// tag closes in order, attribute values are quoted, and '&' starts one of
// the five entities. Returns what is wrong, or an empty string.
std::string xml_problem(const std::string& xml) {
  std::vector<std::string> open;
  size_t at = 0;
  if (xml.rfind("<?xml ", 0) == 0) at = xml.find("?>") + 2;
  while (at < xml.size()) {
    if (xml[at] == '&') {
      const size_t end = xml.find(';', at);
      const std::string entity = xml.substr(at, end == std::string::npos ? 0 : end - at + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" &&
          entity != "&apos;") {
        return "bad entity at " + std::to_string(at);
      }
    }
    if (xml[at] == '>') return "stray '>' at " + std::to_string(at);
    if (xml[at] != '<') {
      ++at;
      continue;
    }
    bool quoted = false;
    size_t end = at + 1;
    for (; end < xml.size() && (quoted || xml[end] != '>'); ++end) {
      if (xml[end] == '"') quoted = !quoted;
      if (xml[end] == '<') return "'<' inside a tag at " + std::to_string(end);
    }
    if (end == xml.size()) return "unclosed tag at " + std::to_string(at);
    const std::string tag = xml.substr(at + 1, end - at - 1);
    const std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    if (tag.front() == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "mismatched </" + tag.substr(1);
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(name);
    }
    if (open.empty() && xml.find('<', end) != std::string::npos) return "content after the root";
    at = end + 1;
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

Chart two_series_chart() {
  return Chart{.title = "latency <by> RAM & clones",
               .x = Axis{.label = "guest \"RAM\"",
                         .scale = AxisScale::kLog,
                         .log_base = 2,
                         .tick_text = nullptr},
               .y = Axis{.label = "time's up", .scale = {}, .log_base = 10, .tick_text = nullptr},
               .series = {Series{.name = "1 clone",
                                 .points = {{64 * kMiB, 2e4}, {kGiB, 3e4}, {4 * kGiB, 5e4}},
                                 .style = LineStyle::kSolid,
                                 .color = 0},
                          Series{.name = "Linux fork() <baseline>",
                                 .points = {{64 * kMiB, 1e5}, {kGiB, 2e6}},
                                 .style = LineStyle::kDotted,
                                 .color = 6}}};
}

TEST(SvgPlotScale, IsLogWhenTheDataSpansADecade) {
  EXPECT_EQ(scale_for(1e3, 1e4), AxisScale::kLog);
  EXPECT_EQ(scale_for(64 * kMiB, 4 * kGiB), AxisScale::kLog);
}

TEST(SvgPlotScale, IsLinearWithinADecade) {
  EXPECT_EQ(scale_for(1e3, 9.9e3), AxisScale::kLinear);
}

TEST(SvgPlotScale, IsLinearWhenTheDataReachesZero) {
  EXPECT_EQ(scale_for(0, 1e6), AxisScale::kLinear);
}

TEST(SvgPlotLogAxis, OfRamSizesHasATickOnEveryPowerOfTwo) {
  const AxisLayout axis = lay_out_axis(64 * kMiB, 4 * kGiB, AxisScale::kLog, 2);
  EXPECT_EQ(axis.scale, AxisScale::kLog);
  EXPECT_EQ(axis.lo, 64 * kMiB);
  EXPECT_EQ(axis.hi, 4 * kGiB);
  const std::vector<double> expected = {64 * kMiB, 128 * kMiB, 256 * kMiB, 512 * kMiB,
                                        kGiB,      2 * kGiB,   4 * kGiB};
  EXPECT_EQ(axis.ticks, expected);
}

TEST(SvgPlotLogAxis, WidensToThePowersAroundTheData) {
  const AxisLayout axis = lay_out_axis(3e3, 4e5, AxisScale::kLog, 10);
  EXPECT_DOUBLE_EQ(axis.lo, 1e3);
  EXPECT_DOUBLE_EQ(axis.hi, 1e6);
  ASSERT_EQ(axis.ticks.size(), 4u);
  EXPECT_DOUBLE_EQ(axis.ticks[1], 1e4);
}

TEST(SvgPlotLogAxis, KeepsAtMostEightTicksAndBothEndsOnTicks) {
  const AxisLayout axis = lay_out_axis(1, 1e12, AxisScale::kLog, 10);
  EXPECT_LE(axis.ticks.size(), 8u);
  EXPECT_DOUBLE_EQ(axis.ticks.front(), axis.lo);
  EXPECT_DOUBLE_EQ(axis.ticks.back(), axis.hi);
  EXPECT_GE(axis.hi, 1e12);
}

TEST(SvgPlotLogAxis, AroundASingleValueSpansAPowerEachSide) {
  const AxisLayout axis = lay_out_axis(kGiB, kGiB, AxisScale::kLog, 2);
  const std::vector<double> expected = {512 * kMiB, kGiB, 2 * kGiB};
  EXPECT_EQ(axis.ticks, expected);
}

TEST(SvgPlotLogAxis, FallsBackToLinearForZero) {
  EXPECT_EQ(lay_out_axis(0, 100, AxisScale::kLog, 10).scale, AxisScale::kLinear);
}

TEST(SvgPlotLinearAxis, TicksOnOneTwoOrFiveTimesAPowerOfTen) {
  const AxisLayout axis = lay_out_axis(0, 9.3, AxisScale::kLinear, 10);
  const std::vector<double> expected = {0, 2, 4, 6, 8, 10};
  EXPECT_EQ(axis.ticks, expected);
  EXPECT_EQ(axis.lo, 0);
  EXPECT_EQ(axis.hi, 10);
}

TEST(SvgPlotLinearAxis, AroundASingleValueContainsIt) {
  const AxisLayout axis = lay_out_axis(5, 5, AxisScale::kLinear, 10);
  EXPECT_LT(axis.lo, 5);
  EXPECT_GT(axis.hi, 5);
  EXPECT_GE(axis.ticks.size(), 2u);
}

TEST(SvgPlotAxisFraction, RunsFromZeroAtLoToOneAtHi) {
  const AxisLayout axis = lay_out_axis(0, 10, AxisScale::kLinear, 10);
  EXPECT_DOUBLE_EQ(axis_fraction(axis, 0), 0);
  EXPECT_DOUBLE_EQ(axis_fraction(axis, 10), 1);
  EXPECT_DOUBLE_EQ(axis_fraction(axis, 2.5), 0.25);
}

TEST(SvgPlotAxisFraction, IsEvenInPowersOnALogAxis) {
  const AxisLayout axis = lay_out_axis(1, 100, AxisScale::kLog, 10);
  EXPECT_NEAR(axis_fraction(axis, 10), 0.5, 1e-12);
}

TEST(SvgPlotEscape, ReplacesTheFiveSpecialCharacters) {
  EXPECT_EQ(xml_escape(R"(a<b>&"c'd)"), "a&lt;b&gt;&amp;&quot;c&apos;d");
  EXPECT_EQ(xml_escape("64 MiB x 8 clones"), "64 MiB x 8 clones");
}

TEST(SvgPlotRender, IsAStandaloneSvgDocument) {
  const std::string svg = render_svg(two_series_chart());
  EXPECT_EQ(svg.rfind("<?xml version=\"1.0\"", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

TEST(SvgPlotRender, IsWellFormedXml) {
  const std::string svg = render_svg(two_series_chart());
  EXPECT_EQ(xml_problem(svg), "") << svg;
}

TEST(SvgPlotRender, ParsesWithXmllintWhereInstalled) {
  if (access("/usr/bin/xmllint", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/xmllint";
  const std::string path = testing::TempDir() + "svg_plot_test.svg";
  std::ofstream(path) << render_svg(two_series_chart());
  const std::string command = "/usr/bin/xmllint --noout '" + path + "' 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0);
  std::remove(path.c_str());
}

TEST(SvgPlotRender, HoldsTheTitleLabelsAndSeriesNamesEscaped) {
  const std::string svg = render_svg(two_series_chart());
  for (const char* text : {"latency &lt;by&gt; RAM &amp; clones", "guest &quot;RAM&quot;",
                           "time&apos;s up", ">1 clone<", "Linux fork() &lt;baseline&gt;"}) {
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  }
  EXPECT_EQ(svg.find("<baseline>"), std::string::npos);
}

TEST(SvgPlotRender, DrawsOneLinePerSeriesAndAPointPerValue) {
  const std::string svg = render_svg(two_series_chart());
  EXPECT_EQ(count_of(svg, "<polyline"), 2u);
  // Five data points, and one marker per legend entry.
  EXPECT_EQ(count_of(svg, "<circle"), 5u + 2u);
  EXPECT_EQ(count_of(svg, "stroke-dasharray"), 2u);  // the dotted line and its legend entry
}

TEST(SvgPlotRender, LabelsTicksWithTheAxisFormatter) {
  Chart chart = two_series_chart();
  chart.x.tick_text = [](double bytes) { return std::to_string(std::lround(bytes / kMiB)) + "M"; };
  const std::string svg = render_svg(chart);
  EXPECT_NE(svg.find(">64M<"), std::string::npos);
  EXPECT_NE(svg.find(">4096M<"), std::string::npos);
}

TEST(SvgPlotRender, LeavesOutPointsALogAxisCannotShow) {
  Chart chart = two_series_chart();
  chart.y.scale = AxisScale::kLog;
  chart.series[0].points.push_back({8 * kGiB, 0});
  const std::string svg = render_svg(chart);
  EXPECT_EQ(count_of(svg, "<circle"), 5u + 2u);
  EXPECT_EQ(xml_problem(svg), "");
}

TEST(SvgPlotRender, OfAnEmptyChartIsStillADocument) {
  const std::string svg = render_svg(Chart{});
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_EQ(count_of(svg, "<circle"), 0u);
}

}  // namespace
}  // namespace vmfork::bench
