#include "vmm/bench/svg_plot.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <limits>
#include <utility>

namespace vmfork::bench {

namespace {

// Geometry of the picture, in SVG user units (pixels at 100%). The legend
// sits right of the plot area so that it never hides a point.
constexpr double kWidth = 820;
constexpr double kHeight = 460;
constexpr double kPlotLeft = 90;
constexpr double kPlotTop = 50;
constexpr double kPlotWidth = 480;
constexpr double kPlotHeight = 340;
constexpr double kLegendLeft = kPlotLeft + kPlotWidth + 24;
constexpr double kLegendRowHeight = 20;

// More ticks than this crowd the labels of an axis 340 pixels long.
constexpr int kMaxTicks = 8;

// Okabe-Ito: told apart by colour-blind readers too.
constexpr std::array<const char*, 7> kPalette = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                 "#E69F00", "#56B4E9", "#000000"};

// Exponents of powers that sit exactly on data values must not slip to
// the next power through rounding in log().
constexpr double kExponentSlack = 1e-9;

AxisLayout log_axis(double data_lo, double data_hi, double base) {
  const double log_base = std::log(base);
  auto lo_power = static_cast<int>(std::floor(std::log(data_lo) / log_base + kExponentSlack));
  auto hi_power = static_cast<int>(std::ceil(std::log(data_hi) / log_base - kExponentSlack));
  if (lo_power == hi_power) {
    --lo_power;
    ++hi_power;
  }
  const int powers = hi_power - lo_power + 1;
  const int step = (powers + kMaxTicks - 1) / kMaxTicks;
  // The top end moves up to a tick, so that both ends are labelled.
  hi_power = lo_power + (hi_power - lo_power + step - 1) / step * step;
  AxisLayout axis{.scale = AxisScale::kLog,
                  .lo = std::pow(base, lo_power),
                  .hi = std::pow(base, hi_power),
                  .ticks = {}};
  for (int power = lo_power; power <= hi_power; power += step)
    axis.ticks.push_back(std::pow(base, power));
  return axis;
}

// 1, 2 or 5 times a power of ten, near a fifth of the range.
double nice_step(double range) {
  const double raw = range / 5;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  if (normalized <= 1) return magnitude;
  if (normalized <= 2) return 2 * magnitude;
  if (normalized <= 5) return 5 * magnitude;
  return 10 * magnitude;
}

AxisLayout linear_axis(double data_lo, double data_hi) {
  if (data_lo == data_hi) {
    const double half = data_lo == 0 ? 1 : std::fabs(data_lo) / 2;
    data_lo -= half;
    data_hi += half;
  }
  const double step = nice_step(data_hi - data_lo);
  const double lo_steps = std::floor(data_lo / step);
  const double hi_steps = std::ceil(data_hi / step);
  AxisLayout axis{
      .scale = AxisScale::kLinear, .lo = lo_steps * step, .hi = hi_steps * step, .ticks = {}};
  // Ticks from whole step counts: adding `step` up would drift.
  for (double steps = lo_steps; steps <= hi_steps; ++steps)
    axis.ticks.push_back(steps * step);
  return axis;
}

// The extent of the values a series set holds on one axis; on a log axis
// only the positive ones (the others are not drawn).
struct Extent {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  bool empty() const { return lo > hi; }
};

template <class Pick>
Extent extent_of(const std::vector<Series>& series, Pick pick, bool positive_only) {
  Extent extent;
  for (const Series& one : series) {
    for (const Point& point : one.points) {
      const double value = pick(point);
      if (positive_only && value <= 0) continue;
      extent.lo = std::min(extent.lo, value);
      extent.hi = std::max(extent.hi, value);
    }
  }
  return extent;
}

template <class Pick>
AxisLayout axis_for(const Axis& axis, const std::vector<Series>& series, Pick pick) {
  const bool forced_log = axis.scale == AxisScale::kLog;
  Extent extent = extent_of(series, pick, forced_log);
  if (extent.empty()) extent = extent_of(series, pick, false);
  if (extent.empty()) extent = {.lo = 1, .hi = 1};
  const AxisScale scale = axis.scale.value_or(scale_for(extent.lo, extent.hi));
  return lay_out_axis(extent.lo, extent.hi, scale, axis.log_base);
}

bool drawable(const AxisLayout& axis, double value) {
  return axis.scale == AxisScale::kLinear || value > 0;
}

double x_pixel(const AxisLayout& axis, double value) {
  return kPlotLeft + axis_fraction(axis, value) * kPlotWidth;
}

double y_pixel(const AxisLayout& axis, double value) {
  return kPlotTop + (1 - axis_fraction(axis, value)) * kPlotHeight;
}

const char* color_of(const Series& series) {
  return kPalette[series.color % kPalette.size()];
}

// Empty for solid lines: no attribute at all.
std::string dash_attribute(LineStyle style) {
  switch (style) {
    case LineStyle::kSolid:
      return "";
    case LineStyle::kDashed:
      return R"( stroke-dasharray="7 4")";
    case LineStyle::kDotted:
      return R"( stroke-dasharray="2 3")";
  }
  return "";
}

std::string tick_text(const Axis& axis, double value) {
  return axis.tick_text ? axis.tick_text(value) : fmt::format("{:g}", value);
}

void draw_axes(std::string& svg, const Chart& chart, const AxisLayout& x, const AxisLayout& y) {
  const double bottom = kPlotTop + kPlotHeight;
  const double right = kPlotLeft + kPlotWidth;
  auto out = std::back_inserter(svg);
  // Grid lines first, so that the series draw over them.
  for (double tick : x.ticks) {
    const double at = x_pixel(x, tick);
    fmt::format_to(out, R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="#ddd"/>)",
                   at, kPlotTop, at, bottom);
    fmt::format_to(out, "\n<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", at,
                   bottom + 18, xml_escape(tick_text(chart.x, tick)));
  }
  for (double tick : y.ticks) {
    const double at = y_pixel(y, tick);
    fmt::format_to(out, R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="#ddd"/>)",
                   kPlotLeft, at, right, at);
    fmt::format_to(out, "\n<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                   kPlotLeft - 6, at + 4, xml_escape(tick_text(chart.y, tick)));
  }
  fmt::format_to(
      out,
      R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="none" stroke="#333"/>)",
      kPlotLeft, kPlotTop, kPlotWidth, kPlotHeight);
  fmt::format_to(out, "\n<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                 kPlotLeft + kPlotWidth / 2, bottom + 42, xml_escape(chart.x.label));
  const double y_label_x = 22;
  const double y_label_y = kPlotTop + kPlotHeight / 2;
  fmt::format_to(out,
                 "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" "
                 "transform=\"rotate(-90 {:.1f} {:.1f})\">{}</text>\n",
                 y_label_x, y_label_y, y_label_x, y_label_y, xml_escape(chart.y.label));
}

void draw_series(std::string& svg, const Series& series, const AxisLayout& x, const AxisLayout& y) {
  std::vector<std::pair<double, double>> pixels;
  for (const Point& point : series.points) {
    if (!drawable(x, point.x) || !drawable(y, point.y)) continue;
    pixels.emplace_back(x_pixel(x, point.x), y_pixel(y, point.y));
  }
  if (pixels.empty()) return;
  auto out = std::back_inserter(svg);
  fmt::format_to(out, "<g stroke=\"{}\" fill=\"{}\">\n", color_of(series), color_of(series));
  if (pixels.size() > 1) {
    std::string points;
    for (const auto& [px, py] : pixels)
      fmt::format_to(std::back_inserter(points), "{}{:.1f},{:.1f}", points.empty() ? "" : " ", px,
                     py);
    fmt::format_to(out, "<polyline fill=\"none\" stroke-width=\"2\"{} points=\"{}\"/>\n",
                   dash_attribute(series.style), points);
  }
  for (const auto& [px, py] : pixels)
    fmt::format_to(out, "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\"/>\n", px, py);
  svg += "</g>\n";
}

void draw_legend(std::string& svg, const std::vector<Series>& series) {
  auto out = std::back_inserter(svg);
  double row_y = kPlotTop + 8;
  for (const Series& one : series) {
    fmt::format_to(out,
                   "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
                   "stroke-width=\"2\"{}/>\n",
                   kLegendLeft, row_y, kLegendLeft + 26, row_y, color_of(one),
                   dash_attribute(one.style));
    fmt::format_to(out, "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n",
                   kLegendLeft + 13, row_y, color_of(one));
    fmt::format_to(out, "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", kLegendLeft + 34, row_y + 4,
                   xml_escape(one.name));
    row_y += kLegendRowHeight;
  }
}

}  // namespace

AxisScale scale_for(double data_lo, double data_hi) {
  return data_lo > 0 && data_hi >= 10 * data_lo ? AxisScale::kLog : AxisScale::kLinear;
}

AxisLayout lay_out_axis(double data_lo, double data_hi, AxisScale scale, double log_base) {
  if (data_lo > data_hi) std::swap(data_lo, data_hi);
  if (scale == AxisScale::kLog && data_lo > 0 && log_base > 1) {
    return log_axis(data_lo, data_hi, log_base);
  }
  return linear_axis(data_lo, data_hi);
}

double axis_fraction(const AxisLayout& axis, double value) {
  if (axis.scale == AxisScale::kLog) {
    return std::log(value / axis.lo) / std::log(axis.hi / axis.lo);
  }
  return (value - axis.lo) / (axis.hi - axis.lo);
}

std::string xml_escape(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&apos;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string render_svg(const Chart& chart) {
  const AxisLayout x = axis_for(chart.x, chart.series, [](const Point& p) { return p.x; });
  const AxisLayout y = axis_for(chart.y, chart.series, [](const Point& p) { return p.y; });
  std::string svg;
  auto out = std::back_inserter(svg);
  fmt::format_to(out,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
                 "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n",
                 kWidth, kHeight);
  fmt::format_to(out, "<title>{}</title>\n", xml_escape(chart.title));
  // Opaque: a transparent picture is unreadable on a dark page.
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  fmt::format_to(out,
                 "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"15\" "
                 "font-weight=\"bold\">{}</text>\n",
                 kPlotLeft + kPlotWidth / 2, kPlotTop - 20, xml_escape(chart.title));
  draw_axes(svg, chart, x, y);
  for (const Series& series : chart.series)
    draw_series(svg, series, x, y);
  draw_legend(svg, chart.series);
  svg += "</svg>\n";
  return svg;
}

}  // namespace vmfork::bench
