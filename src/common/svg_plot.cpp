#include "common/svg_plot.h"

#include "common/error.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <fmt/format.h>
#include <iterator>
#include <string_view>

namespace fhegpt {

namespace {

// Layout, in SVG user units (pixels).
constexpr double kTitleHeight = 40;       // document title band
constexpr double kPanelWidth = 440;       // one panel, margins included
constexpr double kMarginLeft = 72;        // y tick labels and y label
constexpr double kMarginRight = 20;
constexpr double kPanelTitleHeight = 30;  // panel title above the plot area
constexpr double kPlotHeight = 260;
constexpr double kBelowPlot = 52;         // x tick labels and x label
constexpr double kLegendRow = 18;
constexpr double kBottomPad = 12;
constexpr double kClipSlack = 6;        // see render_panel

// Tableau 10: distinct and readable on white.
constexpr const char * kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t kMarkerShapes = 4; // circle, square, triangle, diamond

std::string escape_xml(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default:
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
            out += c;
        }
    }
    return out;
}

// A coordinate, short and locale-free.
std::string num(double v) {
    if (std::abs(v) < 0.005) v = 0.0; // no "-0.00"
    return fmt::format("{:.2f}", v);
}

// 1, 2 or 5 times a power of ten, giving about `target` intervals over `span`.
double nice_step(double span, int target) {
    const double raw = span / target;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / magnitude;
    const double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nice * magnitude;
}

void check_panel(const PlotPanel & panel, size_t index) {
    const std::string name = fmt::format("plot panel {} ('{}')", index, panel.title);
    if (!std::isfinite(panel.y_min) || !std::isfinite(panel.y_max) || !(panel.y_max > panel.y_min))
        fail("{}: y range [{}, {}] is not a finite, non-empty interval", name, panel.y_min, panel.y_max);
    if (panel.series.empty()) fail("{}: no series", name);
    for (size_t s = 0; s < panel.series.size(); ++s) {
        const PlotSeries & series = panel.series[s];
        if (series.x.empty() && series.y.empty()) fail("{}: series {} ('{}') is empty", name, s, series.label);
        if (series.x.size() != series.y.size())
            fail("{}: series {} ('{}') has {} x values but {} y values", name, s, series.label,
                 series.x.size(), series.y.size());
        for (size_t i = 0; i < series.x.size(); ++i)
            if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i]))
                fail("{}: series {} ('{}') point {} ({}, {}) is not finite", name, s, series.label, i,
                     series.x[i], series.y[i]);
    }
}

void marker(std::string & out, size_t shape, double cx, double cy, const char * colour) {
    switch (shape % kMarkerShapes) {
    case 0:
        out += fmt::format(R"(<circle cx="{}" cy="{}" r="3.5" fill="{}"/>)", num(cx), num(cy), colour);
        break;
    case 1:
        out += fmt::format(R"(<rect x="{}" y="{}" width="7" height="7" fill="{}"/>)", num(cx - 3.5),
                           num(cy - 3.5), colour);
        break;
    case 2:
        out += fmt::format(R"(<path d="M{} {} L{} {} L{} {} Z" fill="{}"/>)", num(cx), num(cy - 4.5),
                           num(cx + 4.5), num(cy + 3.5), num(cx - 4.5), num(cy + 3.5), colour);
        break;
    default:
        out += fmt::format(R"(<path d="M{} {} L{} {} L{} {} L{} {} Z" fill="{}"/>)", num(cx), num(cy - 5),
                           num(cx + 5), num(cy), num(cx), num(cy + 5), num(cx - 5), num(cy), colour);
        break;
    }
    out += '\n';
}

void render_panel(std::string & out, const PlotPanel & panel, size_t index, double origin_x, double origin_y) {
    // Data ranges: x from the points, padded; y as given.
    double x_lo = panel.series[0].x[0], x_hi = x_lo;
    for (const PlotSeries & s : panel.series)
        for (double x : s.x) {
            x_lo = std::min(x_lo, x);
            x_hi = std::max(x_hi, x);
        }
    const double pad = x_hi > x_lo ? 0.05 * (x_hi - x_lo) : 0.5;
    x_lo -= pad;
    x_hi += pad;
    const double y_lo = panel.y_min, y_hi = panel.y_max;

    const double left = origin_x + kMarginLeft, right = origin_x + kPanelWidth - kMarginRight;
    const double top = origin_y + kPanelTitleHeight, bottom = top + kPlotHeight;
    auto sx = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * (right - left); };
    auto sy = [&](double y) { return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top); };
    const std::string clip_id = fmt::format("fhegpt-plot-clip-{}", index);

    out += fmt::format("<g class=\"panel\">\n");
    // The clip area reaches a little past the frame, so that markers on its edge (agreement 1.0)
    // are drawn whole.
    out += fmt::format(R"(<clipPath id="{}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath>)", clip_id,
                       num(left - kClipSlack), num(top - kClipSlack), num(right - left + 2 * kClipSlack),
                       num(bottom - top + 2 * kClipSlack));
    out += '\n';
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" font-size="14" font-weight="bold">{}</text>)",
                       num((left + right) / 2), num(top - 10), escape_xml(panel.title));
    out += '\n';

    // y gridlines and tick labels.
    const double y_step = nice_step(y_hi - y_lo, 5);
    const int y_decimals = std::max(0, -static_cast<int>(std::floor(std::log10(y_step) + 1e-9)));
    const double y_first = std::ceil(y_lo / y_step - 1e-9);
    for (int k = 0;; ++k) {
        double v = (y_first + k) * y_step;
        if (v > y_hi + 1e-9 * y_step) break;
        if (std::abs(v) < 1e-9 * y_step) v = 0.0;
        const double py = sy(v);
        out += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#dddddd" stroke-width="1"/>)", num(left),
                           num(py), num(right), num(py));
        out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end" font-size="11">{:.{}f}</text>)", num(left - 6),
                           num(py + 4), v, y_decimals);
        out += '\n';
    }

    // x gridlines and tick labels, at integers only.
    const double x_step = std::max(1.0, std::round(nice_step(x_hi - x_lo, 12)));
    const double x_first = std::ceil(x_lo / x_step);
    for (int k = 0;; ++k) {
        double v = (x_first + k) * x_step;
        if (v > x_hi) break;
        v += 0.0; // no "-0"
        const double px = sx(v);
        out += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#dddddd" stroke-width="1"/>)", num(px),
                           num(top), num(px), num(bottom));
        out += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#000000" stroke-width="1"/>)", num(px),
                           num(bottom), num(px), num(bottom + 4));
        out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" font-size="11">{:.0f}</text>)", num(px),
                           num(bottom + 17), v);
        out += '\n';
    }

    // Axes: a frame around the plot area.
    out += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#000000" stroke-width="1"/>)",
                       num(left), num(top), num(right - left), num(bottom - top));
    out += '\n';
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" font-size="12">{}</text>)", num((left + right) / 2),
                       num(bottom + 38), escape_xml(panel.x_label));
    out += '\n';
    const double y_label_x = origin_x + 18, y_label_y = (top + bottom) / 2;
    out += fmt::format(R"svg(<text x="{}" y="{}" text-anchor="middle" font-size="12" transform="rotate(-90 {} {})">{}</text>)svg",
                       num(y_label_x), num(y_label_y), num(y_label_x), num(y_label_y), escape_xml(panel.y_label));
    out += '\n';

    // Series: one polyline each, then its markers, clipped to the plot area.
    out += fmt::format("<g clip-path=\"url(#{})\">\n", clip_id);
    for (size_t s = 0; s < panel.series.size(); ++s) {
        const PlotSeries & series = panel.series[s];
        const char * colour = kColours[s % std::size(kColours)];
        std::string points;
        for (size_t i = 0; i < series.x.size(); ++i) {
            if (i > 0) points += ' ';
            points += num(sx(series.x[i])) + ',' + num(sy(series.y[i]));
        }
        out += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)", colour, points);
        out += '\n';
        for (size_t i = 0; i < series.x.size(); ++i) marker(out, s, sx(series.x[i]), sy(series.y[i]), colour);
    }
    out += "</g>\n";

    // Legend below the plot, one row per series.
    for (size_t s = 0; s < panel.series.size(); ++s) {
        const char * colour = kColours[s % std::size(kColours)];
        const double row_y = bottom + kBelowPlot + kLegendRow * static_cast<double>(s) + kLegendRow / 2;
        out += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"/>)", num(left),
                           num(row_y), num(left + 24), num(row_y), colour);
        marker(out, s, left + 12, row_y, colour);
        out += fmt::format(R"(<text x="{}" y="{}" font-size="11">{}</text>)", num(left + 32), num(row_y + 4),
                           escape_xml(panel.series[s].label));
        out += '\n';
    }
    out += "</g>\n";
}

} // namespace

std::string render_svg_line_panels(const std::vector<PlotPanel> & panels, const std::string & title) {
    if (panels.empty()) fail("plot '{}': no panels", title);
    size_t legend_rows = 0;
    for (size_t p = 0; p < panels.size(); ++p) {
        check_panel(panels[p], p);
        legend_rows = std::max(legend_rows, panels[p].series.size());
    }

    const double width = kPanelWidth * static_cast<double>(panels.size());
    const double height = kTitleHeight + kPanelTitleHeight + kPlotHeight + kBelowPlot +
                          kLegendRow * static_cast<double>(legend_rows) + kBottomPad;

    std::string out;
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" )"
                       R"(font-family="sans-serif">)",
                       num(width), num(height));
    out += '\n';
    out += fmt::format("<title>{}</title>\n", escape_xml(title));
    out += R"(<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>)";
    out += '\n';
    out += fmt::format(R"(<text x="{}" y="26" text-anchor="middle" font-size="16" font-weight="bold">{}</text>)",
                       num(width / 2), escape_xml(title));
    out += '\n';
    for (size_t p = 0; p < panels.size(); ++p)
        render_panel(out, panels[p], p, kPanelWidth * static_cast<double>(p), kTitleHeight);
    out += "</svg>\n";
    return out;
}

} // namespace fhegpt
