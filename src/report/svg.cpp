// Svg writer (svg.h). Coordinates are printed with two decimals and text is escaped; the output
// depends only on the calls made, which keeps the report byte-stable.
#include "report/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace polymoe::report {

std::string xml_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        switch (ch) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += ch;
        }
    }
    return out;
}

std::string coord(double v) {
    if (!std::isfinite(v)) v = 0;
    // Snap to a 1e-6 grid before rounding to two decimals: builds with other optimisation
    // (vector code, operation order) differ in the last bits, which flips ties such as 143.375
    // between "143.37" and "143.38" and would break the byte-stable output.
    v = std::round(v * 1e6) / 1e6;
    std::string s = fmt::format("{:.2f}", v);
    if (s == "-0.00") s = "0.00";
    return s;
}

std::string viridis(double t) {
    if (std::isnan(t)) return "#d9d9d9";
    // matplotlib's viridis at t = 0, 0.1, ..., 1.
    static constexpr unsigned char kStops[11][3] = {
        {0x44, 0x01, 0x54}, {0x48, 0x24, 0x75}, {0x41, 0x44, 0x87}, {0x35, 0x5f, 0x8d},
        {0x2a, 0x78, 0x8e}, {0x21, 0x91, 0x8c}, {0x22, 0xa8, 0x84}, {0x44, 0xbf, 0x70},
        {0x7a, 0xd1, 0x51}, {0xbd, 0xdf, 0x26}, {0xfd, 0xe7, 0x25}};
    t = std::clamp(t, 0.0, 1.0) * 10;
    const int i = std::min(static_cast<int>(t), 9);
    const double f = t - i;
    int c[3];
    for (int k = 0; k < 3; ++k)
        c[k] = static_cast<int>(std::lround(kStops[i][k] + f * (kStops[i + 1][k] - kStops[i][k])));
    return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
}

std::string text_color_on(std::string_view fill) {
    unsigned r = 0, g = 0, b = 0;
    if (fill.size() == 7 && fill[0] == '#')
        std::sscanf(std::string(fill).c_str(), "#%02x%02x%02x", &r, &g, &b);
    // WCAG relative luminance with the sRGB transfer function; 0.179 is where black and white
    // text have equal contrast.
    auto lin = [](unsigned v) {
        const double c = v / 255.0;
        return c <= 0.03928 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
    };
    const double y = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    return y > 0.179 ? "#000" : "#fff";
}

std::string category_color(int i) {
    static constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                               "#D55E00", "#56B4E9", "#F0E442", "#000000"};
    constexpr int n = sizeof(kPalette) / sizeof(kPalette[0]);
    return kPalette[((i % n) + n) % n];
}

namespace {

std::string title_child(std::string_view tooltip) {
    if (tooltip.empty()) return {};
    return "<title>" + xml_escape(tooltip) + "</title>";
}

// Emits <tag attrs/> or <tag attrs><title>..</title></tag>.
std::string element(std::string_view tag, const std::string& attrs, std::string_view tooltip) {
    if (tooltip.empty()) return fmt::format("<{} {}/>\n", tag, attrs);
    return fmt::format("<{} {}>{}</{}>\n", tag, attrs, title_child(tooltip), tag);
}

}  // namespace

Svg::Svg(double width, double height, std::string_view title)
    : width_(width), height_(height), title_(title) {}

void Svg::rect(double x,
               double y,
               double w,
               double h,
               std::string_view fill,
               std::string_view tooltip,
               std::string_view stroke,
               double stroke_width) {
    std::string a = fmt::format(R"(x="{}" y="{}" width="{}" height="{}" fill="{}")", coord(x),
                                coord(y), coord(w), coord(h), fill);
    if (!stroke.empty())
        a += fmt::format(R"( stroke="{}" stroke-width="{}")", stroke, coord(stroke_width));
    body_ += element("rect", a, tooltip);
}

void Svg::line(double x1,
               double y1,
               double x2,
               double y2,
               std::string_view stroke,
               double width,
               std::string_view dash) {
    std::string a = fmt::format(R"(x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}")",
                                coord(x1), coord(y1), coord(x2), coord(y2), stroke, coord(width));
    if (!dash.empty()) a += fmt::format(R"( stroke-dasharray="{}")", dash);
    body_ += element("line", a, {});
}

void Svg::polyline(const double* xs,
                   const double* ys,
                   int n,
                   std::string_view stroke,
                   double width,
                   std::string_view dash,
                   std::string_view tooltip) {
    std::string pts;
    auto flush = [&] {
        if (pts.empty()) return;
        std::string a = fmt::format(R"(points="{}" fill="none" stroke="{}" stroke-width="{}")", pts,
                                    stroke, coord(width));
        if (!dash.empty()) a += fmt::format(R"( stroke-dasharray="{}")", dash);
        body_ += element("polyline", a, tooltip);
        pts.clear();
    };
    for (int i = 0; i < n; ++i) {
        if (!std::isfinite(ys[i])) {
            flush();
            continue;
        }
        if (!pts.empty()) pts += ' ';
        pts += coord(xs[i]) + "," + coord(ys[i]);
    }
    flush();
}

void Svg::band(const double* xs,
               const double* lo,
               const double* hi,
               int n,
               std::string_view fill,
               double opacity) {
    std::string pts;
    std::vector<int> idx;
    for (int i = 0; i < n; ++i)
        if (std::isfinite(lo[i]) && std::isfinite(hi[i])) idx.push_back(i);
    if (idx.size() < 2) return;
    for (int i : idx)
        pts += coord(xs[i]) + "," + coord(hi[i]) + " ";
    for (auto it = idx.rbegin(); it != idx.rend(); ++it)
        pts += coord(xs[*it]) + "," + coord(lo[*it]) + " ";
    pts.pop_back();
    body_ += element("polygon",
                     fmt::format(R"(points="{}" fill="{}" fill-opacity="{}" stroke="none")", pts,
                                 fill, coord(opacity)),
                     {});
}

void Svg::circle(double cx, double cy, double r, std::string_view fill, std::string_view tooltip) {
    body_ += element(
        "circle",
        fmt::format(R"(cx="{}" cy="{}" r="{}" fill="{}")", coord(cx), coord(cy), coord(r), fill),
        tooltip);
}

void Svg::polygon(std::string_view points, std::string_view fill, std::string_view tooltip) {
    body_ += element("polygon", fmt::format(R"(points="{}" fill="{}")", points, fill), tooltip);
}

void Svg::text(
    double x, double y, std::string_view s, const TextStyle& st, std::string_view tooltip) {
    static constexpr const char* kAnchor[] = {"start", "middle", "end"};
    std::string a = fmt::format(R"(x="{}" y="{}" font-size="{}" fill="{}")", coord(x), coord(y),
                                coord(st.size), st.color);
    if (st.anchor != Anchor::kStart)
        a += fmt::format(R"( text-anchor="{}")", kAnchor[static_cast<int>(st.anchor)]);
    if (st.bold) a += R"( font-weight="bold")";
    if (st.italic) a += R"( font-style="italic")";
    if (st.rotate != 0)
        a += fmt::format(" transform=\"rotate({} {} {})\"", coord(st.rotate), coord(x), coord(y));
    body_ += fmt::format("<text {}>{}{}</text>\n", a, title_child(tooltip), xml_escape(s));
}

std::string Svg::open_tag() const {
    return fmt::format(
        R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" )"
        R"(font-family="DejaVu Sans, Arial, sans-serif" role="img" aria-label="{}">)",
        coord(width_), coord(height_), coord(width_), coord(height_), xml_escape(title_));
}

std::string Svg::inline_fragment() const {
    return open_tag() + "\n<title>" + xml_escape(title_) + "</title>\n" +
           R"(<rect x="0" y="0" width="100%" height="100%" fill="#fff"/>)" + "\n" + body_ +
           "</svg>\n";
}

std::string Svg::document() const {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + inline_fragment();
}

}  // namespace polymoe::report
