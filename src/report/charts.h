// The report's chart types, drawn into Svg: heatmap panels side by side or in a small-multiples
// grid with one shared colour scale and a colour bar, line charts over layers with CI bands and
// dashed reference curves, and grouped bar charts with CI whiskers. Charts only draw the numbers
// they are given; all statistics come from the analysis, eval and interventions JSON.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "report/svg.h"

namespace polymoe::report {

inline constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

struct HeatmapPanel {
    std::string title;
    std::vector<double> values;                 // [rows][cols], NaN = no value (grey)
    std::vector<std::string> tooltips;          // [rows][cols] or empty
    std::vector<std::pair<int, int>> outlined;  // (row, col) cells drawn with a frame
    std::vector<int> marked_cols;               // columns with a triangle above them
};

struct HeatmapSpec {
    std::string title;
    std::vector<std::string> row_labels, col_labels;
    std::vector<bool> row_emph, col_emph;     // italic with a trailing '*' (e.g. Stage 2)
    std::vector<int> row_groups, col_groups;  // separators between consecutive groups
    std::string x_label, y_label, scale_label;
    double cell = 32;
    bool values_in_cells = true;
    int decimals = 2;
    double vmin = kNoValue, vmax = kNoValue;  // shared scale; NaN = range of all panels
    int columns = 0;                          // panels per row; 0 = all in one row
    bool labels = true;                       // row/column labels (first column/row of panels)
    std::string outline_legend, mark_legend, emph_legend;
};

Svg heatmap_figure(const HeatmapSpec& spec, const std::vector<HeatmapPanel>& panels);

struct Series {
    std::string name;
    std::string color;
    std::vector<double> y, lo, hi;      // lo/hi empty = no band
    std::string dash;                   // SVG dash pattern; empty = solid
    std::vector<std::string> tooltips;  // per point; empty = "name: y"
    bool markers = true;
};

inline Series line_series(std::string name,
                          std::string color,
                          std::string dash = {},
                          bool markers = true) {
    Series s;
    s.name = std::move(name);
    s.color = std::move(color);
    s.dash = std::move(dash);
    s.markers = markers;
    return s;
}

struct LineChartSpec {
    std::string title{}, x_label{}, y_label{};
    std::vector<double> x{};
    std::vector<Series> series{};
    double width = 660, height = 320;
    double ymin = kNoValue, ymax = kNoValue;  // NaN = from data (ymin includes 0 if near)
};

Svg line_chart(const LineChartSpec& spec);

struct Bar {
    std::string label;  // legend key, also used in the tooltip
    double value = kNoValue, lo = kNoValue, hi = kNoValue;
    std::string color;
    std::string tooltip;
};

struct BarGroup {
    std::string label;
    bool emph = false;
    std::vector<Bar> bars;
    double reference = kNoValue;  // per-group reference mark (e.g. a random baseline)
};

struct BarChartSpec {
    std::string title, y_label, x_label;
    std::vector<BarGroup> groups;
    std::vector<std::pair<std::string, std::string>> legend;  // (name, color)
    std::string reference_legend;
    double bar_width = 14, height = 260;  // height of the plot area and title
    double ymin = kNoValue, ymax = kNoValue;
};

Svg bar_chart(const BarChartSpec& spec);

// "0.437 [0.390, 0.471]" with the given number of decimals; "n/a" for NaN values.
std::string format_ci(double value, double lo, double hi, int decimals);
std::string format_num(double value, int decimals);

}  // namespace polymoe::report
