// A minimal SVG writer for the report's figures: elements are appended to a string with fixed
// number formatting (two decimals for coordinates), so the same inputs always give the same
// bytes (the report has a snapshot test). Text is XML-escaped; every element can carry a
// <title> child, which browsers show as a tooltip with the exact value. Colours: viridis for
// sequential values and the Okabe-Ito palette for categories, both readable with common colour
// vision deficiencies.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace polymoe::report {

// Escapes &, <, >, " and ' for XML text and attribute values.
std::string xml_escape(std::string_view s);

// Viridis colour for t in [0, 1] (clamped) as "#rrggbb": piecewise-linear interpolation of the
// colormap sampled at eleven points (0, 0.1, ..., 1; values of matplotlib's viridis, van der Walt
// and Smith 2015, CC0). NaN gives a neutral grey, the report's colour for "no value".
std::string viridis(double t);

// Black or white, whichever reads better on the given "#rrggbb" background (relative luminance).
std::string text_color_on(std::string_view fill);

// Okabe & Ito (2008) colour-blind-safe categorical palette, cycled by index.
std::string category_color(int i);

enum class Anchor { kStart, kMiddle, kEnd };

struct TextStyle {
    double size = 11;
    Anchor anchor = Anchor::kStart;
    bool bold = false;
    bool italic = false;
    double rotate = 0;  // degrees about (x, y)
    std::string color = "#222";
};

class Svg {
public:
    Svg(double width, double height, std::string_view title);

    double width() const { return width_; }
    double height() const { return height_; }

    // Each shape takes an optional tooltip (a <title> child); empty = none.
    void rect(double x,
              double y,
              double w,
              double h,
              std::string_view fill,
              std::string_view tooltip = {},
              std::string_view stroke = {},
              double stroke_width = 1);
    void line(double x1,
              double y1,
              double x2,
              double y2,
              std::string_view stroke,
              double width = 1,
              std::string_view dash = {});
    // Open polyline through (xs[i], ys[i]); points with non-finite y break the line.
    void polyline(const double* xs,
                  const double* ys,
                  int n,
                  std::string_view stroke,
                  double width = 1.5,
                  std::string_view dash = {},
                  std::string_view tooltip = {});
    // Closed band between lower and upper curves (a CI band), skipping non-finite points.
    void band(const double* xs,
              const double* lo,
              const double* hi,
              int n,
              std::string_view fill,
              double opacity);
    void circle(
        double cx, double cy, double r, std::string_view fill, std::string_view tooltip = {});
    void polygon(std::string_view points, std::string_view fill, std::string_view tooltip = {});
    void text(double x,
              double y,
              std::string_view s,
              const TextStyle& style = {},
              std::string_view tooltip = {});

    // Standalone document (XML declaration, namespace) or the fragment to inline in HTML.
    std::string document() const;
    std::string inline_fragment() const;

private:
    std::string open_tag() const;
    double width_, height_;
    std::string title_;
    std::string body_;
};

// Formats a coordinate with two decimals ("-0.00" normalised to "0.00").
std::string coord(double v);

}  // namespace polymoe::report
