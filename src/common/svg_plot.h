// A minimal, dependency-free SVG line-chart writer, for accuracy plots (agreement against a
// knob such as the number of quantization bits). Several panels sit side by side in one
// document ("single head" | "full attention"); each has axes, gridlines, ticks at integer x
// values, a legend below the plot, and per series one polyline plus a marker on every point,
// with a distinct colour and marker shape per series.
#pragma once

#include <string>
#include <vector>

namespace fhegpt {

struct PlotSeries {
    std::string label;
    std::vector<double> x, y; // same length, at least one point, all finite
};

struct PlotPanel {
    std::string title, x_label, y_label;
    std::vector<PlotSeries> series; // at least one
    double y_min = 0, y_max = 1;    // the y axis range (points outside it are clipped)
};

// The whole SVG document. The x range of a panel comes from its data, padded a little; the y
// range is [y_min, y_max]. Text is XML-escaped. Throws fhegpt::Error for no panels, a panel
// without series, an empty series, x and y of different sizes, non-finite values, or
// y_max <= y_min.
std::string render_svg_line_panels(const std::vector<PlotPanel> & panels, const std::string & title);

} // namespace fhegpt
