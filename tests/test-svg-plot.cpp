// The SVG line-chart writer: structure, escaping, one polyline per series, bad input.
#include "common/error.h"
#include "common/svg_plot.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <string>
#include <vector>

namespace {

using fhegpt::PlotPanel;
using fhegpt::PlotSeries;
using fhegpt::render_svg_line_panels;

size_t count(const std::string & text, const std::string & needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
    return n;
}

// A small well-formedness check: every element opened is closed in order, attributes are
// quoted, every '&' starts an entity, and there is a single root element.
::testing::AssertionResult well_formed(const std::string & xml) {
    std::vector<std::string> open;
    size_t roots = 0;
    size_t i = 0;
    while (i < xml.size()) {
        if (xml[i] == '&') {
            const size_t semi = xml.find(';', i);
            const std::string entity = semi == std::string::npos ? "" : xml.substr(i, semi - i + 1);
            if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" && entity != "&apos;")
                return ::testing::AssertionFailure() << "bad entity at " << i;
            i = semi + 1;
            continue;
        }
        if (xml[i] == '>') return ::testing::AssertionFailure() << "stray '>' at " << i;
        if (xml[i] != '<') {
            if (open.empty() && !std::isspace(static_cast<unsigned char>(xml[i])))
                return ::testing::AssertionFailure() << "text outside the root at " << i;
            ++i;
            continue;
        }
        // A tag; quoted attribute values may not contain '<'.
        size_t end = i + 1;
        char quote = 0;
        for (; end < xml.size(); ++end) {
            const char c = xml[end];
            if (quote) {
                if (c == quote) quote = 0;
                else if (c == '<') return ::testing::AssertionFailure() << "'<' in an attribute at " << end;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '>') {
                break;
            }
        }
        if (end == xml.size()) return ::testing::AssertionFailure() << "unterminated tag at " << i;
        const std::string tag = xml.substr(i + 1, end - i - 1);
        i = end + 1;
        if (tag.starts_with("?")) continue; // the XML declaration
        if (tag.starts_with("/")) {
            const std::string name = tag.substr(1);
            if (open.empty() || open.back() != name)
                return ::testing::AssertionFailure() << "closing </" << name << "> does not match";
            open.pop_back();
            continue;
        }
        const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
        if (name.empty()) return ::testing::AssertionFailure() << "tag without a name";
        if (open.empty()) ++roots;
        if (!tag.ends_with("/")) open.push_back(name);
    }
    if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> never closed";
    if (roots != 1) return ::testing::AssertionFailure() << roots << " root elements";
    return ::testing::AssertionSuccess();
}

PlotPanel panel(const std::string & title, size_t n_series) {
    PlotPanel p;
    p.title = title;
    p.x_label = "bits";
    p.y_label = "agreement";
    for (size_t s = 0; s < n_series; ++s) {
        PlotSeries series;
        series.label = "series " + std::to_string(s);
        for (int x = 2; x <= 8; ++x) {
            series.x.push_back(x);
            series.y.push_back(0.1 * x + 0.01 * static_cast<double>(s));
        }
        p.series.push_back(series);
    }
    return p;
}

TEST(SvgPlot, WellFormedDocument) {
    const std::string svg = render_svg_line_panels({panel("single head", 3), panel("full attention", 2)}, "Agreement");
    EXPECT_TRUE(svg.starts_with("<?xml"));
    EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
    EXPECT_TRUE(svg.ends_with("</svg>\n"));
    EXPECT_TRUE(well_formed(svg));
    EXPECT_NE(svg.find("single head"), std::string::npos);
    EXPECT_NE(svg.find("full attention"), std::string::npos);
    EXPECT_NE(svg.find(">Agreement<"), std::string::npos);
    EXPECT_EQ(count(svg, "<g class=\"panel\">"), 2u);
    EXPECT_EQ(count(svg, "<clipPath"), 2u);
}

TEST(SvgPlot, OnePolylinePerSeries) {
    EXPECT_EQ(count(render_svg_line_panels({panel("a", 1)}, "t"), "<polyline"), 1u);
    EXPECT_EQ(count(render_svg_line_panels({panel("a", 4)}, "t"), "<polyline"), 4u);
    EXPECT_EQ(count(render_svg_line_panels({panel("a", 3), panel("b", 2)}, "t"), "<polyline"), 5u);
}

TEST(SvgPlot, DistinctColoursAndLegend) {
    const std::string svg = render_svg_line_panels({panel("a", 3)}, "t");
    for (const char * colour : {"#1f77b4", "#ff7f0e", "#2ca02c"})
        EXPECT_NE(svg.find(std::string("stroke=\"") + colour + "\" stroke-width=\"2\" points="), std::string::npos)
            << colour;
    for (int s = 0; s < 3; ++s) EXPECT_NE(svg.find(">series " + std::to_string(s) + "<"), std::string::npos);
}

TEST(SvgPlot, IntegerXTicks) {
    const std::string svg = render_svg_line_panels({panel("a", 1)}, "t");
    // x runs over 2..8: every integer has a tick label (y labels have decimals).
    for (int x = 2; x <= 8; ++x) EXPECT_NE(svg.find(">" + std::to_string(x) + "</text>"), std::string::npos) << x;
    EXPECT_NE(svg.find(">0.0</text>"), std::string::npos);
    EXPECT_NE(svg.find(">1.0</text>"), std::string::npos);
}

TEST(SvgPlot, SinglePointSeries) {
    PlotPanel p;
    p.series.push_back({"one", {3.0}, {0.5}});
    const std::string svg = render_svg_line_panels({p}, "");
    EXPECT_TRUE(well_formed(svg));
    EXPECT_NE(svg.find(">3</text>"), std::string::npos);
}

TEST(SvgPlot, EscapesLabels) {
    PlotPanel p = panel("<head & \"tail\">", 1);
    p.x_label = "x < 'y'";
    p.y_label = "a&b";
    p.series[0].label = "</text><script>";
    const std::string svg = render_svg_line_panels({p}, "R&D <plot>");
    EXPECT_TRUE(well_formed(svg));
    EXPECT_NE(svg.find("&lt;head &amp; &quot;tail&quot;&gt;"), std::string::npos);
    EXPECT_NE(svg.find("x &lt; &apos;y&apos;"), std::string::npos);
    EXPECT_NE(svg.find("a&amp;b"), std::string::npos);
    EXPECT_NE(svg.find("&lt;/text&gt;&lt;script&gt;"), std::string::npos);
    EXPECT_NE(svg.find("R&amp;D &lt;plot&gt;"), std::string::npos);
    EXPECT_EQ(svg.find("<script"), std::string::npos);
}

TEST(SvgPlot, BadInputFails) {
    EXPECT_THROW(render_svg_line_panels({}, "t"), fhegpt::Error);

    PlotPanel no_series = panel("a", 0);
    EXPECT_THROW(render_svg_line_panels({no_series}, "t"), fhegpt::Error);

    PlotPanel empty = panel("a", 1);
    empty.series[0].x.clear();
    empty.series[0].y.clear();
    try {
        render_svg_line_panels({empty}, "t");
        FAIL() << "no error for an empty series";
    } catch (const fhegpt::Error & e) {
        EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
    }

    PlotPanel mismatched = panel("a", 2);
    mismatched.series[1].y.pop_back();
    try {
        render_svg_line_panels({panel("ok", 1), mismatched}, "t");
        FAIL() << "no error for x and y of different sizes";
    } catch (const fhegpt::Error & e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("7 x values but 6 y values"), std::string::npos) << message;
        EXPECT_NE(message.find("series 1"), std::string::npos) << message;
    }

    PlotPanel not_finite = panel("a", 1);
    not_finite.series[0].y[2] = std::nan("");
    EXPECT_THROW(render_svg_line_panels({not_finite}, "t"), fhegpt::Error);

    PlotPanel bad_range = panel("a", 1);
    bad_range.y_min = 1;
    bad_range.y_max = 1;
    EXPECT_THROW(render_svg_line_panels({bad_range}, "t"), fhegpt::Error);
}

} // namespace
