// Chart drawing (charts.h). Layout is computed from label lengths with a fixed per-character
// width estimate (no font metrics are available without a browser), generous enough for the
// DejaVu/Arial fonts the SVGs name.
#include "report/charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace polymoe::report {

namespace {

constexpr double kCharWidth = 0.62;  // average glyph width / font size
constexpr double kTitleSize = 14;

double text_width(const std::string& s, double size) {
    // Count code points, not bytes (labels may be non-ASCII).
    size_t n = 0;
    for (unsigned char c : s)
        n += (c & 0xC0) != 0x80;
    return static_cast<double>(n) * size * kCharWidth;
}

std::string emph_label(const std::string& s, bool emph) {
    return emph ? s + "*" : s;
}

// Round step for about `target` ticks over [lo, hi].
double nice_step(double lo, double hi, int target) {
    const double span = hi - lo;
    if (!(span > 0)) return 1;
    const double raw = span / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (raw <= m * mag) return m * mag;
    return 10 * mag;
}

int decimals_for(double step) {
    if (!(step > 0)) return 2;
    return std::clamp(static_cast<int>(std::ceil(-std::log10(step) + 1e-9)), 0, 6);
}

struct Range {
    double lo = kNoValue, hi = kNoValue;
    void add(double v) {
        if (!std::isfinite(v)) return;
        lo = std::isfinite(lo) ? std::min(lo, v) : v;
        hi = std::isfinite(hi) ? std::max(hi, v) : v;
    }
    void fix(double fallback_lo = 0, double fallback_hi = 1) {
        if (!std::isfinite(lo)) lo = fallback_lo;
        if (!std::isfinite(hi)) hi = fallback_hi;
        if (hi <= lo) {
            const double pad = std::abs(lo) > 0 ? std::abs(lo) * 0.1 : 1;
            lo -= pad;
            hi += pad;
        }
    }
};

void legend_row(Svg& svg,
                double x,
                double y,
                const std::string& color,
                const std::string& name,
                const std::string& dash = {}) {
    svg.line(x, y - 4, x + 18, y - 4, color, 2.5, dash);
    svg.text(x + 22, y, name, {.size = 11});
}

// Horizontal grid lines with value labels at round steps over the y range.
template <typename MapY>
void y_grid(Svg& svg, const Range& yr, double left, double plot_w, MapY Y) {
    const double ys = nice_step(yr.lo, yr.hi, 5);
    const int yd = decimals_for(ys);
    for (double t = std::ceil(yr.lo / ys - 1e-9) * ys; t <= yr.hi + ys * 1e-9; t += ys) {
        svg.line(left, Y(t), left + plot_w, Y(t), "#e6e6e6");
        svg.text(left - 6, Y(t) + 3.5, format_num(t, yd), {.size = 10, .anchor = Anchor::kEnd});
    }
}

}  // namespace

std::string format_num(double v, int decimals) {
    if (!std::isfinite(v)) return "n/a";
    std::string s = fmt::format("{:.{}f}", v, decimals);
    if (s.find_first_not_of("-0.") == std::string::npos && s[0] == '-') s.erase(0, 1);
    return s;
}

std::string format_ci(double value, double lo, double hi, int decimals) {
    if (!std::isfinite(value)) return "n/a";
    if (!std::isfinite(lo) || !std::isfinite(hi)) return format_num(value, decimals);
    return fmt::format("{} [{}, {}]", format_num(value, decimals), format_num(lo, decimals),
                       format_num(hi, decimals));
}

Svg heatmap_figure(const HeatmapSpec& s, const std::vector<HeatmapPanel>& panels) {
    const int rows = static_cast<int>(s.row_labels.size());
    const int cols = static_cast<int>(s.col_labels.size());
    const int np = static_cast<int>(panels.size());
    const int per_row = s.columns > 0 ? std::min(s.columns, np) : np;
    const int panel_rows = (np + per_row - 1) / std::max(per_row, 1);
    const double c = s.cell;
    const double label_size = std::clamp(c * 0.42, 7.0, 11.0);
    const bool labels = s.labels && c >= 7;

    double row_label_w = 0, col_label_h = 0;
    if (labels) {
        for (int r = 0; r < rows; ++r)
            row_label_w = std::max(row_label_w,
                                   text_width(emph_label(s.row_labels[static_cast<size_t>(r)],
                                                         r < static_cast<int>(s.row_emph.size()) &&
                                                             s.row_emph[static_cast<size_t>(r)]),
                                              label_size));
        for (int k = 0; k < cols; ++k)
            col_label_h = std::max(
                col_label_h, text_width(s.col_labels[static_cast<size_t>(k)] + "*", label_size));
        col_label_h = col_label_h * 0.72 + 8;  // labels run at -45 degrees
        row_label_w += 8;
    }
    Range range;
    range.lo = s.vmin;
    range.hi = s.vmax;
    if (!std::isfinite(s.vmin) || !std::isfinite(s.vmax)) {
        Range data;
        for (const auto& p : panels)
            for (double v : p.values)
                data.add(v);
        if (!std::isfinite(s.vmin)) range.lo = data.lo;
        if (!std::isfinite(s.vmax)) range.hi = data.hi;
    }
    range.fix();

    const double y_axis_w = s.y_label.empty() ? 0 : 18;
    const double left = 10 + y_axis_w + row_label_w;
    const double panel_w = cols * c, panel_h = rows * c;
    bool any_marks = false;
    for (const auto& p : panels)
        any_marks = any_marks || !p.marked_cols.empty();
    const double mark_h = any_marks ? std::min(c, 8.0) + 2 : 0;
    const double gap_x = labels ? 16 : 10, panel_title_h = 18 + mark_h;
    const double top = 10 + kTitleSize + 12;
    const double block_h = panel_title_h + panel_h + (labels ? col_label_h : 4) + 10;
    const double bar_x = left + per_row * panel_w + (per_row - 1) * gap_x + 22;
    const double width = bar_x + 14 + 60;
    double legend_h = 0;
    for (const std::string* l : {&s.outline_legend, &s.mark_legend, &s.emph_legend})
        legend_h += l->empty() ? 0 : 16;
    const double height = top + panel_rows * block_h + (s.x_label.empty() ? 0 : 18) + legend_h + 8;

    Svg svg(std::max(width, text_width(s.title, kTitleSize) + 20), height, s.title);
    svg.text(10, 10 + kTitleSize, s.title, {.size = kTitleSize, .bold = true});
    auto color_of = [&](double v) { return viridis((v - range.lo) / (range.hi - range.lo)); };

    for (int p = 0; p < np; ++p) {
        const HeatmapPanel& P = panels[static_cast<size_t>(p)];
        const int pc = p % per_row, pr = p / per_row;
        const double x0 = left + pc * (panel_w + gap_x);
        const double y0 = top + pr * block_h + panel_title_h;
        const double title_size = std::min(12.0, panel_w / std::max(1.0, text_width(P.title, 1.0)));
        svg.text(x0 + panel_w / 2, y0 - 6 - mark_h, P.title,
                 {.size = title_size, .anchor = Anchor::kMiddle, .bold = true});
        for (int r = 0; r < rows; ++r)
            for (int k = 0; k < cols; ++k) {
                const size_t i = static_cast<size_t>(r) * cols + k;
                const double v = i < P.values.size() ? P.values[i] : kNoValue;
                const std::string fill = color_of(v);
                const std::string tip = i < P.tooltips.size() ? P.tooltips[i] : std::string();
                svg.rect(x0 + k * c, y0 + r * c, c, c, fill, tip);
                if (s.values_in_cells && std::isfinite(v) && c >= 18)
                    svg.text(x0 + k * c + c / 2,
                             y0 + r * c + c / 2 + std::min(c * 0.3, 11.0) * 0.35,
                             format_num(v, s.decimals),
                             {.size = std::min(c * 0.3, 11.0),
                              .anchor = Anchor::kMiddle,
                              .color = text_color_on(fill)});
            }
        // Group separators (e.g. between scripts).
        for (int r = 1; r < rows && r < static_cast<int>(s.row_groups.size()); ++r)
            if (s.row_groups[static_cast<size_t>(r)] != s.row_groups[static_cast<size_t>(r - 1)])
                svg.line(x0, y0 + r * c, x0 + panel_w, y0 + r * c, "#fff", c >= 18 ? 2.5 : 1.2);
        for (int k = 1; k < cols && k < static_cast<int>(s.col_groups.size()); ++k)
            if (s.col_groups[static_cast<size_t>(k)] != s.col_groups[static_cast<size_t>(k - 1)])
                svg.line(x0 + k * c, y0, x0 + k * c, y0 + panel_h, "#fff", c >= 18 ? 2.5 : 1.2);
        for (const auto& [r, k] : P.outlined)
            svg.rect(x0 + k * c + 1, y0 + r * c + 1, c - 2, c - 2, "none", {}, "#ff2a2a",
                     std::max(1.0, c / 8));
        for (int k : P.marked_cols) {
            const double cx = x0 + k * c + c / 2, h = std::min(c, 8.0);
            svg.polygon(fmt::format("{},{} {},{} {},{}", coord(cx - h / 2), coord(y0 - h - 1),
                                    coord(cx + h / 2), coord(y0 - h - 1), coord(cx), coord(y0 - 1)),
                        "#333", s.mark_legend);
        }
        if (!labels) continue;
        if (pc == 0)
            for (int r = 0; r < rows; ++r) {
                const bool e =
                    r < static_cast<int>(s.row_emph.size()) && s.row_emph[static_cast<size_t>(r)];
                svg.text(x0 - 4, y0 + r * c + c / 2 + label_size * 0.35,
                         emph_label(s.row_labels[static_cast<size_t>(r)], e),
                         {.size = label_size, .anchor = Anchor::kEnd, .italic = e});
            }
        for (int k = 0; k < cols; ++k) {
            const bool e =
                k < static_cast<int>(s.col_emph.size()) && s.col_emph[static_cast<size_t>(k)];
            const double tx = x0 + k * c + c / 2 + label_size * 0.3, ty = y0 + panel_h + 6;
            svg.text(tx, ty, emph_label(s.col_labels[static_cast<size_t>(k)], e),
                     {.size = label_size, .anchor = Anchor::kEnd, .italic = e, .rotate = -45});
        }
    }
    if (!s.y_label.empty()) {
        const double cy = top + panel_rows * block_h / 2;
        svg.text(14, cy, s.y_label, {.size = 11, .anchor = Anchor::kMiddle, .rotate = -90});
    }
    double y = top + panel_rows * block_h;
    if (!s.x_label.empty()) {
        svg.text(left + (per_row * panel_w + (per_row - 1) * gap_x) / 2, y + 6, s.x_label,
                 {.size = 11, .anchor = Anchor::kMiddle});
        y += 18;
    }
    for (const std::string* l : {&s.outline_legend, &s.mark_legend, &s.emph_legend}) {
        if (l->empty()) continue;
        if (l == &s.outline_legend)
            svg.rect(left, y + 2, 10, 10, "none", {}, "#ff2a2a", 2);
        else if (l == &s.mark_legend)
            svg.polygon(fmt::format("{},{} {},{} {},{}", coord(left), coord(y + 3),
                                    coord(left + 10), coord(y + 3), coord(left + 5), coord(y + 12)),
                        "#333");
        else
            svg.text(left + 2, y + 12, "*", {.size = 12, .italic = true});
        svg.text(left + 16, y + 12, *l, {.size = 11});
        y += 16;
    }

    // Colour bar with ticks, spanning the first row of panels.
    const double by = top + panel_title_h, bh = std::max(panel_h, 60.0);
    constexpr int kSteps = 48;
    for (int i = 0; i < kSteps; ++i) {
        const double t0 = static_cast<double>(i) / kSteps;
        svg.rect(bar_x, by + bh * (1 - t0 - 1.0 / kSteps), 14, bh / kSteps + 0.5,
                 viridis(t0 + 0.5 / kSteps));
    }
    svg.rect(bar_x, by, 14, bh, "none", {}, "#555", 0.6);
    const double step = nice_step(range.lo, range.hi, 4);
    const int dec = decimals_for(step);
    for (double t = std::ceil(range.lo / step - 1e-9) * step; t <= range.hi + step * 1e-9;
         t += step) {
        const double yy = by + bh * (1 - (t - range.lo) / (range.hi - range.lo));
        svg.line(bar_x + 14, yy, bar_x + 18, yy, "#555");
        svg.text(bar_x + 20, yy + 3.5, format_num(t, dec), {.size = 10});
    }
    if (!s.scale_label.empty())
        svg.text(bar_x + 7, by - 6, s.scale_label, {.size = 10, .anchor = Anchor::kMiddle});
    return svg;
}

Svg line_chart(const LineChartSpec& s) {
    Range yr;
    for (const Series& se : s.series)
        for (const auto* v : {&se.y, &se.lo, &se.hi})
            for (double x : *v)
                yr.add(x);
    if (std::isfinite(s.ymin)) yr.lo = s.ymin;
    if (std::isfinite(s.ymax)) yr.hi = s.ymax;
    // Include 0 when the data start near it, so small values are not magnified.
    if (!std::isfinite(s.ymin) && std::isfinite(yr.lo) && yr.lo > 0 && yr.lo < 0.3 * yr.hi)
        yr.lo = 0;
    yr.fix();
    Range xr;
    for (double x : s.x)
        xr.add(x);
    xr.fix();

    double legend_w = 0;
    for (const Series& se : s.series)
        legend_w = std::max(legend_w, text_width(se.name, 11) + 30);
    const double left = 62, top = 10 + kTitleSize + 14, bottom = 44;
    const double plot_w = s.width - left - legend_w - 20, plot_h = s.height - top - bottom;
    Svg svg(s.width, s.height, s.title);
    svg.text(10, 10 + kTitleSize, s.title, {.size = kTitleSize, .bold = true});
    auto X = [&](double x) { return left + (x - xr.lo) / (xr.hi - xr.lo) * plot_w; };
    auto Y = [&](double y) { return top + (1 - (y - yr.lo) / (yr.hi - yr.lo)) * plot_h; };

    y_grid(svg, yr, left, plot_w, Y);
    const double xs = std::max(1.0, nice_step(xr.lo, xr.hi, 8));
    for (double t = std::ceil(xr.lo / xs - 1e-9) * xs; t <= xr.hi + xs * 1e-9; t += xs) {
        svg.line(X(t), top + plot_h, X(t), top + plot_h + 4, "#555");
        svg.text(X(t), top + plot_h + 16, format_num(t, decimals_for(xs)),
                 {.size = 10, .anchor = Anchor::kMiddle});
    }
    svg.rect(left, top, plot_w, plot_h, "none", {}, "#888", 0.8);
    svg.text(left + plot_w / 2, s.height - 8, s.x_label, {.size = 11, .anchor = Anchor::kMiddle});
    svg.text(14, top + plot_h / 2, s.y_label,
             {.size = 11, .anchor = Anchor::kMiddle, .rotate = -90});

    const int n = static_cast<int>(s.x.size());
    std::vector<double> px(static_cast<size_t>(n)), py, plo, phi;
    for (int i = 0; i < n; ++i)
        px[static_cast<size_t>(i)] = X(s.x[static_cast<size_t>(i)]);
    auto map = [&](const std::vector<double>& v, std::vector<double>* out) {
        out->assign(static_cast<size_t>(n), kNoValue);
        for (int i = 0; i < n && i < static_cast<int>(v.size()); ++i)
            if (std::isfinite(v[static_cast<size_t>(i)]))
                (*out)[static_cast<size_t>(i)] = Y(v[static_cast<size_t>(i)]);
    };
    for (const Series& se : s.series) {
        if (se.lo.empty() || se.hi.empty()) continue;
        map(se.lo, &plo);
        map(se.hi, &phi);
        svg.band(px.data(), plo.data(), phi.data(), n, se.color, 0.2);
    }
    for (const Series& se : s.series) {
        map(se.y, &py);
        svg.polyline(px.data(), py.data(), n, se.color, se.dash.empty() ? 2 : 1.4, se.dash,
                     se.name);
        if (!se.markers) continue;
        for (int i = 0; i < n; ++i) {
            const size_t u = static_cast<size_t>(i);
            if (!std::isfinite(py[u])) continue;
            std::string tip = u < se.tooltips.size()
                                  ? se.tooltips[u]
                                  : fmt::format("{}, {} {}: {}", se.name, s.x_label,
                                                format_num(s.x[u], 0), format_num(se.y[u], 4));
            svg.circle(px[u], py[u], 2.6, se.color, tip);
        }
    }
    double ly = top + 10;
    for (const Series& se : s.series) {
        legend_row(svg, left + plot_w + 12, ly, se.color, se.name, se.dash);
        ly += 16;
    }
    return svg;
}

Svg bar_chart(const BarChartSpec& s) {
    Range yr;
    for (const BarGroup& g : s.groups) {
        yr.add(g.reference);
        for (const Bar& b : g.bars)
            for (double v : {b.value, b.lo, b.hi})
                yr.add(v);
    }
    yr.add(0);
    if (std::isfinite(s.ymin)) yr.lo = s.ymin;
    if (std::isfinite(s.ymax)) yr.hi = s.ymax;
    yr.fix();
    double legend_w = 0;
    for (const auto& [name, color] : s.legend)
        legend_w = std::max(legend_w, text_width(name, 11) + 30);
    if (!s.reference_legend.empty())
        legend_w = std::max(legend_w, text_width(s.reference_legend, 11) + 30);
    double group_w = 0;
    for (const BarGroup& g : s.groups)
        group_w = std::max(group_w, g.bars.size() * s.bar_width + 12);
    double label_w = 0;
    for (const BarGroup& g : s.groups)
        label_w = std::max(label_w, text_width(emph_label(g.label, g.emph), 11));
    // Group labels run at -35 degrees: sin(35) of their length below the axis, cos(35) to the left.
    const double left = std::max(62.0, label_w * 0.82 - 10), top = 10 + kTitleSize + 14;
    const double bottom = 24 + label_w * 0.58 + (s.x_label.empty() ? 0 : 16);
    const double plot_w = std::max(group_w * static_cast<double>(s.groups.size()), 120.0);
    const double width = left + plot_w + legend_w + 30;
    const double height = s.height + bottom;
    Svg svg(std::max(width, text_width(s.title, kTitleSize) + 20), height, s.title);
    svg.text(10, 10 + kTitleSize, s.title, {.size = kTitleSize, .bold = true});
    const double plot_h = s.height - top;
    auto Y = [&](double y) { return top + (1 - (y - yr.lo) / (yr.hi - yr.lo)) * plot_h; };
    y_grid(svg, yr, left, plot_w, Y);
    svg.line(left, Y(0), left + plot_w, Y(0), "#555");
    for (size_t gi = 0; gi < s.groups.size(); ++gi) {
        const BarGroup& g = s.groups[gi];
        const double gx = left + gi * group_w + 6;
        for (size_t bi = 0; bi < g.bars.size(); ++bi) {
            const Bar& b = g.bars[bi];
            if (!std::isfinite(b.value)) continue;
            const double x = gx + bi * s.bar_width;
            const double y0 = Y(0), y1 = Y(b.value);
            const std::string tip =
                b.tooltip.empty()
                    ? fmt::format("{}, {}: {}", g.label, b.label, format_ci(b.value, b.lo, b.hi, 4))
                    : b.tooltip;
            svg.rect(x + 1, std::min(y0, y1), s.bar_width - 2, std::abs(y1 - y0), b.color, tip);
            if (std::isfinite(b.lo) && std::isfinite(b.hi)) {
                const double cx = x + s.bar_width / 2;
                svg.line(cx, Y(b.lo), cx, Y(b.hi), "#222", 1.2);
                svg.line(cx - 3, Y(b.lo), cx + 3, Y(b.lo), "#222", 1.2);
                svg.line(cx - 3, Y(b.hi), cx + 3, Y(b.hi), "#222", 1.2);
            }
        }
        if (std::isfinite(g.reference))
            svg.line(gx - 2, Y(g.reference), gx + g.bars.size() * s.bar_width + 2, Y(g.reference),
                     "#222", 1.5, "4 3");
        const double cx = gx + g.bars.size() * s.bar_width / 2;
        svg.text(cx + 4, top + plot_h + 12, emph_label(g.label, g.emph),
                 {.size = 11, .anchor = Anchor::kEnd, .italic = g.emph, .rotate = -35});
    }
    svg.rect(left, top, plot_w, plot_h, "none", {}, "#888", 0.8);
    svg.text(14, top + plot_h / 2, s.y_label,
             {.size = 11, .anchor = Anchor::kMiddle, .rotate = -90});
    if (!s.x_label.empty())
        svg.text(left + plot_w / 2, height - 6, s.x_label, {.size = 11, .anchor = Anchor::kMiddle});
    double ly = top + 10;
    for (const auto& [name, color] : s.legend) {
        svg.rect(left + plot_w + 12, ly - 9, 12, 10, color);
        svg.text(left + plot_w + 30, ly, name, {.size = 11});
        ly += 16;
    }
    if (!s.reference_legend.empty())
        legend_row(svg, left + plot_w + 12, ly, "#222", s.reference_legend, "4 3");
    return svg;
}

}  // namespace polymoe::report
