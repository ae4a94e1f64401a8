// A small SVG line chart for the bench pictures (`--plot FILE.svg`): one
// plot area, an x and a y axis with ticks and labels, several series drawn
// as lines through points, and a legend. An axis whose data spans a decade
// or more is drawn on a log scale (RAM sizes 64M..4G, latencies us..ms);
// otherwise linear. The output is a standalone SVG document, every text
// XML-escaped; no dependency beyond the standard library and fmt.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmfork::bench {

enum class AxisScale : uint8_t { kLinear, kLog };

struct Axis {
  std::string label;
  // Empty: chosen from the data (scale_for). RAM sizes ask for kLog, so
  // that 64M..512M still reads in powers of two.
  std::optional<AxisScale> scale;
  // Log ticks fall on the powers of this: 2 for sizes in bytes (64 MiB,
  // 128 MiB, ...), 10 for times (1 us, 10 us, ...).
  double log_base = 10;
  // The text under (or beside) a tick at `value`.
  std::function<std::string(double)> tick_text;
};

enum class LineStyle : uint8_t { kSolid, kDashed, kDotted };

struct Point {
  double x = 0;
  double y = 0;
};

struct Series {
  std::string name;
  std::vector<Point> points;  // drawn in this order
  LineStyle style = LineStyle::kSolid;
  // Index into the chart's palette (several series may share a colour and
  // differ by style, e.g. one colour per clone count, one style per mode).
  size_t color = 0;
};

struct Chart {
  std::string title;
  Axis x;
  Axis y;
  std::vector<Series> series;
};

// Where an axis runs and where its ticks are, from the data's extent.
struct AxisLayout {
  AxisScale scale = AxisScale::kLinear;
  double lo = 0;  // the axis ends, on ticks
  double hi = 1;
  std::vector<double> ticks;  // ascending, within [lo, hi]
};

// Log when every value is positive and the largest is at least 10 times the
// smallest; linear otherwise.
AxisScale scale_for(double data_lo, double data_hi);

// The axis for data in [data_lo, data_hi] on `scale`: log ticks on powers
// of `log_base` (every other power, or sparser, when there would be more
// than 8), linear ticks on 1, 2 or 5 times a power of ten; the ends are
// widened to the ticks around the data. A single value gets an axis around
// it. kLog with data_lo <= 0 falls back to linear (a log axis cannot hold
// zero).
AxisLayout lay_out_axis(double data_lo, double data_hi, AxisScale scale, double log_base);

// Where `value` falls along the axis: 0 at lo, 1 at hi.
double axis_fraction(const AxisLayout& axis, double value);

// & < > " ' as entities: text and attribute values alike.
std::string xml_escape(std::string_view text);

// The whole SVG document. Points a log axis cannot show (zero or negative)
// are left out.
std::string render_svg(const Chart& chart);

}  // namespace vmfork::bench
