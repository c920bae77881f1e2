// render_report (report.h): walks the analysis, eval and interventions JSON and emits, in order,
// the findings summary, Figure 1 (last-layer JSD heatmaps of every checkpoint on one colour
// scale), the all-layer JSD grid, per-layer curves with CI bands and baselines, expert-usage
// heatmaps, expert reuse, router drift, the ablation specificity matrices and the per-language
// evaluation table. Every number shown is read from the inputs; findings quote a value with its
// interval and the baseline it is compared with, and say plainly when it does not clear it.
#include "report/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "io/file_util.h"
#include "report/charts.h"

namespace polymoe::report {

namespace {

using nlohmann::json;
constexpr std::string_view kComponent = "report";

// A JSON node with its path, for errors that name the file and the field.
class Node {
public:
    Node(const json* j, std::string file, std::string path)
        : j_(j), file_(std::move(file)), path_(std::move(path)) {}

    Node operator[](std::string_view key) const {
        if (!j_->is_object()) bad("an object");
        auto it = j_->find(key);
        if (it == j_->end())
            fail(kComponent, "{}: {}.{}: expected a field, found none", file_, path_, key);
        return {&*it, file_, path_ + "." + std::string(key)};
    }
    Node operator[](size_t i) const {
        if (!j_->is_array()) bad("an array");
        if (i >= j_->size())
            fail(kComponent, "{}: {}: expected at least {} entries, found {}", file_, path_, i + 1,
                 j_->size());
        return {&(*j_)[i], file_, fmt::format("{}[{}]", path_, i)};
    }
    bool has(std::string_view key) const { return j_->is_object() && j_->contains(key); }
    size_t size() const {
        if (!j_->is_array() && !j_->is_object()) bad("an array or object");
        return j_->size();
    }
    bool is_null() const { return j_->is_null(); }
    // Numbers; null (how the analysis writes undefined values) reads as NaN.
    double num() const {
        if (j_->is_null()) return kNoValue;
        if (!j_->is_number()) bad("a number");
        return j_->get<double>();
    }
    int integer() const {
        if (!j_->is_number_integer()) bad("an integer");
        return j_->get<int>();
    }
    std::string str() const {
        if (!j_->is_string()) bad("a string");
        return j_->get<std::string>();
    }
    std::vector<std::string> keys() const {
        if (!j_->is_object()) bad("an object");
        std::vector<std::string> k;
        for (auto it = j_->begin(); it != j_->end(); ++it)
            k.push_back(it.key());
        return k;
    }
    const std::string& path() const { return path_; }

private:
    [[noreturn]] void bad(std::string_view what) const {
        fail(kComponent, "{}: {}: expected {}, found {}", file_, path_, what, j_->type_name());
    }
    const json* j_;
    std::string file_, path_;
};

struct Ci {
    double v = kNoValue, lo = kNoValue, hi = kNoValue;
    bool above(double x) const { return std::isfinite(lo) && std::isfinite(x) && lo > x; }
    bool below(double x) const { return std::isfinite(hi) && std::isfinite(x) && hi < x; }
    std::string str(int d) const { return format_ci(v, lo, hi, d); }
};

Ci ci(const Node& n) {
    if (n.is_null()) return {};
    return {n["value"].num(), n["lo"].num(), n["hi"].num()};
}

Node root(const JsonInput& in) {
    return {&in.doc, in.path, "$"};
}

struct Lang {
    std::string code, name, script, stage, related;
};

int stage_rank(const std::string& s) {
    if (s == "base") return 0;
    if (s == "1") return 1;
    if (s == "2") return 2;
    return 3;
}

struct Trace {
    std::string label;
    Node node;
    std::vector<int> layers;  // model layer number of each recorded layer
    int E = 0, K = 0;
    std::map<std::string, int> index;  // language code -> row in the trace's tables
};

// Languages of all traces, grouped by script (then stage, then code), and each trace's rows.
struct Study {
    std::vector<Lang> langs;
    std::vector<int> group;  // script group of each language
    std::vector<Trace> traces;
    bool emph(size_t i) const { return langs[i].stage == "2"; }
    bool any_emph() const {
        for (size_t i = 0; i < langs.size(); ++i)
            if (emph(i)) return true;
        return false;
    }
    std::vector<bool> emph_all() const {
        std::vector<bool> e;
        for (size_t i = 0; i < langs.size(); ++i)
            e.push_back(emph(i));
        return e;
    }
    std::vector<std::string> codes() const {
        std::vector<std::string> c;
        for (const Lang& l : langs)
            c.push_back(l.code);
        return c;
    }
};

Study read_study(const JsonInput& analysis) {
    const Node r = root(analysis);
    if (r["kind"].str() != "polymoe.analysis")
        fail(kComponent, "{}: $.kind: expected polymoe.analysis, found {}", analysis.path,
             r["kind"].str());
    Study s;
    const Node traces = r["traces"];
    if (traces.size() == 0)
        fail(kComponent, "{}: $.traces: expected at least one trace, found none", analysis.path);
    std::map<std::string, Lang> all;
    for (size_t t = 0; t < traces.size(); ++t) {
        const Node tn = traces[t];
        Trace tr{tn["label"].str(), tn, {}, tn["num_experts"].integer(), tn["top_k"].integer(), {}};
        const Node layers = tn["layers"];
        for (size_t i = 0; i < layers.size(); ++i)
            tr.layers.push_back(layers[i].integer());
        if (tr.layers.empty())
            fail(kComponent, "{}: {}.layers: expected at least one layer, found none",
                 analysis.path, tn.path());
        const Node langs = tn["languages"];
        for (size_t i = 0; i < langs.size(); ++i) {
            const Node l = langs[i];
            Lang x{l["code"].str(), l["name"].str(), l["script"].str(), l["stage"].str(),
                   l["related"].str()};
            tr.index[x.code] = static_cast<int>(i);
            all.emplace(x.code, x);
        }
        s.traces.push_back(std::move(tr));
    }
    for (auto& [code, l] : all)
        s.langs.push_back(l);
    std::stable_sort(s.langs.begin(), s.langs.end(), [](const Lang& a, const Lang& b) {
        if (a.script != b.script) return a.script < b.script;
        if (stage_rank(a.stage) != stage_rank(b.stage))
            return stage_rank(a.stage) < stage_rank(b.stage);
        return a.code < b.code;
    });
    int g = -1;
    for (size_t i = 0; i < s.langs.size(); ++i) {
        if (i == 0 || s.langs[i].script != s.langs[i - 1].script) ++g;
        s.group.push_back(g);
    }
    return s;
}

// CSV with fixed formatting: shortest round-trip doubles, empty for NaN, quoted text if needed.
class Csv {
public:
    explicit Csv(std::vector<std::string> header) {
        for (size_t i = 0; i < header.size(); ++i)
            text_ += (i ? "," : "") + header[i];
        text_ += "\n";
    }
    Csv& cell(const std::string& s) {
        sep();
        if (s.find_first_of(",\"\n") == std::string::npos) {
            text_ += s;
        } else {
            text_ += '"';
            for (char c : s)
                text_ += c == '"' ? std::string("\"\"") : std::string(1, c);
            text_ += '"';
        }
        return *this;
    }
    Csv& cell(double v) {
        sep();
        if (std::isfinite(v)) text_ += fmt::format("{}", v);
        return *this;
    }
    Csv& cell(int v) {
        sep();
        text_ += std::to_string(v);
        return *this;
    }
    Csv& cell(const Ci& c) { return cell(c.v).cell(c.lo).cell(c.hi); }
    void end() {
        text_ += "\n";
        first_ = true;
    }
    const std::string& text() const { return text_; }

private:
    void sep() {
        if (!first_) text_ += ",";
        first_ = false;
    }
    std::string text_;
    bool first_ = true;
};

std::string html_escape(std::string_view s) {
    return xml_escape(s);
}

// Assembles the HTML body, figures, tables and findings.
class Builder {
public:
    void section(const std::string& id, const std::string& title, const std::string& intro) {
        body_ += fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", id, html_escape(title));
        if (!intro.empty()) body_ += "<p>" + intro + "</p>\n";
        toc_.emplace_back(id, title);
    }
    void end_section() { body_ += "</section>\n"; }
    void html(const std::string& h) { body_ += h; }
    void paragraph(const std::string& escaped) { body_ += "<p>" + escaped + "</p>\n"; }
    void figure(const std::string& name, const Svg& svg, const std::string& caption) {
        ++fig_;
        body_ += fmt::format(
            "<figure id=\"{}\">\n<div class=\"svg\">\n{}</div>\n<figcaption><b>Figure {}.</b> {} "
            "<a href=\"figures/{}\">[SVG]</a></figcaption>\n</figure>\n",
            name, svg.inline_fragment(), fig_, caption, name);
        out_.figures.push_back({name, svg.document()});
    }
    void table(const std::string& name, const Csv& csv) {
        out_.tables.push_back({name, csv.text()});
    }
    void finding(const std::string& text) { out_.findings.push_back(text); }
    RenderedReport finish(const std::string& title, const std::string& provenance);

private:
    RenderedReport out_;
    std::string body_;
    std::vector<std::pair<std::string, std::string>> toc_;
    int fig_ = 0;
};

constexpr std::string_view kStyle = R"(
body{font-family:"DejaVu Sans",Arial,sans-serif;color:#222;max-width:1400px;margin:24px auto;padding:0 16px;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
figure{margin:1em 0}figure .svg{overflow-x:auto}figcaption{font-size:.92em;color:#333;max-width:1100px}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}.em{font-style:italic}.small{font-size:.88em;color:#555}
ul.findings li{margin:.35em 0}nav ol{columns:2}code{background:#f4f4f4;padding:0 3px}
)";

RenderedReport Builder::finish(const std::string& title, const std::string& provenance) {
    std::string h;
    h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
    h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n";
    h += fmt::format("<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n", html_escape(title),
                     kStyle);
    h += fmt::format("<h1>{}</h1>\n", html_escape(title));
    h += "<section id=\"findings\">\n<h2>Findings</h2>\n<p class=\"small\">Each line states what "
         "was measured, its 95% interval where one exists, and the baseline it is compared "
         "with. Intervals are percentile bootstrap intervals over documents; \"clears\" means the "
         "whole interval lies beyond the baseline.</p>\n<ul class=\"findings\">\n";
    for (const std::string& f : out_.findings)
        h += "<li>" + html_escape(f) + "</li>\n";
    h += "</ul>\n</section>\n<nav>\n<h2>Contents</h2>\n<ol>\n";
    for (const auto& [id, t] : toc_)
        h += fmt::format("<li><a href=\"#{}\">{}</a></li>\n", id, html_escape(t));
    h += "</ol>\n</nav>\n";
    h += body_;
    h += provenance;
    h += "</body>\n</html>\n";
    out_.html = std::move(h);
    return std::move(out_);
}

std::string layer_name(int layer) {
    return fmt::format("layer {}", layer);
}

// ---- Figure 1 and 2: JSD heatmaps ----

HeatmapPanel jsd_panel(const Study& s, const Trace& t, size_t r, bool detailed) {
    const size_t n = s.langs.size();
    HeatmapPanel p;
    p.title = detailed ? fmt::format("{} · {}", t.label, layer_name(t.layers[r]))
                       : layer_name(t.layers[r]);
    p.values.assign(n * n, kNoValue);
    p.tooltips.assign(n * n, {});
    const Node L = t.node["jsd"]["layers"][r];
    const Node bits = L["bits"], perm = L["permutation"], floor = L["split_half_bits"];
    for (size_t a = 0; a < n; ++a)
        for (size_t b = 0; b < n; ++b) {
            auto ia = t.index.find(s.langs[a].code), ib = t.index.find(s.langs[b].code);
            std::string tip;
            if (ia == t.index.end() || ib == t.index.end()) {
                p.tooltips[a * n + b] =
                    fmt::format("{} vs {}, {}, {}: no tokens in this trace", s.langs[a].code,
                                s.langs[b].code, t.label, layer_name(t.layers[r]));
                continue;
            }
            const auto x = static_cast<size_t>(ia->second), y = static_cast<size_t>(ib->second);
            const Ci c = ci(bits[x][y]);
            p.values[a * n + b] = c.v;
            if (a == b) {
                p.tooltips[a * n + b] =
                    fmt::format("{}, {}, {}: split-half floor {} bits", s.langs[a].code, t.label,
                                layer_name(t.layers[r]), format_num(floor[x].num(), 4));
                continue;
            }
            const Node pn = perm[x][y];
            p.tooltips[a * n + b] = fmt::format(
                "{} vs {}, {}, {}: JSD {} bits (95% CI); permutation p = {}, null 95th pct {}; "
                "split-half floors {} / {}",
                s.langs[a].code, s.langs[b].code, t.label, layer_name(t.layers[r]), c.str(4),
                pn.is_null() ? "n/a" : format_num(pn["p_value"].num(), 4),
                pn.is_null() ? "n/a" : format_num(pn["null_p95"].num(), 4),
                format_num(floor[x].num(), 4), format_num(floor[y].num(), 4));
        }
    return p;
}

double max_jsd(const Study& s, bool last_only) {
    double m = 0;
    for (const Trace& t : s.traces) {
        const Node layers = t.node["jsd"]["layers"];
        for (size_t r = last_only ? layers.size() - 1 : 0; r < layers.size(); ++r) {
            const Node bits = layers[r]["bits"];
            for (size_t a = 0; a < bits.size(); ++a)
                for (size_t b = 0; b < bits[a].size(); ++b) {
                    const double v = bits[a][b]["value"].num();
                    if (std::isfinite(v)) m = std::max(m, v);
                }
        }
    }
    return m > 0 ? m : 1;
}

HeatmapSpec language_matrix_spec(const Study& s, const std::string& title) {
    HeatmapSpec h;
    h.title = title;
    h.row_labels = h.col_labels = s.codes();
    h.row_emph = h.col_emph = s.emph_all();
    h.row_groups = h.col_groups = s.group;
    if (s.any_emph())
        h.emph_legend = "Stage 2 (low-resource) language; white lines separate scripts";
    return h;
}

void jsd_figures(const Study& s, Builder& b) {
    const Trace& t0 = s.traces.front();
    const int last = t0.layers.back();
    std::string labels;
    for (const Trace& t : s.traces)
        labels += (labels.empty() ? "" : ", ") + t.label;
    b.section("jsd", "Language × language routing divergence",
              "Jensen–Shannon divergence (bits, 0 = identical routing, 1 = disjoint experts) "
              "between the languages' token-to-expert distributions. Diagonal: the same-language "
              "split-half floor is in the tooltip (hover a cell for the interval, permutation "
              "p-value and floors).");
    HeatmapSpec h = language_matrix_spec(
        s, fmt::format("Routing JSD between languages at the last layer ({})", layer_name(last)));
    h.scale_label = "bits";
    h.vmin = 0;
    h.vmax = max_jsd(s, true);
    std::vector<HeatmapPanel> panels;
    Csv csv({"checkpoint", "layer", "language_a", "language_b", "jsd_bits", "lo", "hi",
             "permutation_p", "split_half_a", "split_half_b"});
    for (const Trace& t : s.traces) {
        const size_t r = t.layers.size() - 1;
        HeatmapPanel p = jsd_panel(s, t, r, false);
        p.title = fmt::format("{} · {}", t.label, layer_name(t.layers[r]));
        panels.push_back(std::move(p));
        const Node L = t.node["jsd"]["layers"][r];
        for (const Lang& la : s.langs)
            for (const Lang& lb : s.langs) {
                auto ia = t.index.find(la.code), ib = t.index.find(lb.code);
                if (ia == t.index.end() || ib == t.index.end() || la.code == lb.code) continue;
                const auto x = static_cast<size_t>(ia->second), y = static_cast<size_t>(ib->second);
                const Node pn = L["permutation"][x][y];
                csv.cell(t.label).cell(t.layers[r]).cell(la.code).cell(lb.code);
                csv.cell(ci(L["bits"][x][y]))
                    .cell(pn.is_null() ? kNoValue : pn["p_value"].num())
                    .cell(L["split_half_bits"][x].num())
                    .cell(L["split_half_bits"][y].num());
                csv.end();
            }
    }
    b.figure("fig1_jsd_last_layer.svg", heatmap_figure(h, panels),
             fmt::format("Pairwise routing JSD at the last layer ({}) for {}, on one colour scale. "
                         "Languages are grouped by script; Stage 2 languages are marked *.",
                         layer_name(last), html_escape(labels)));
    b.table("jsd_last_layer.csv", csv);

    HeatmapSpec g = language_matrix_spec(s, "Routing JSD between languages at every layer");
    g.cell = 9;
    g.values_in_cells = false;
    g.columns = std::min<int>(8, static_cast<int>(t0.layers.size()));
    g.scale_label = "bits";
    g.vmin = 0;
    g.vmax = max_jsd(s, false);
    g.emph_legend.clear();
    std::vector<HeatmapPanel> grid;
    for (const Trace& t : s.traces)
        for (size_t r = 0; r < t.layers.size(); ++r)
            grid.push_back(jsd_panel(s, t, r, true));
    b.figure("fig2_jsd_all_layers.svg", heatmap_figure(g, grid),
             "The same matrices for every recorded layer (rows of panels: " + html_escape(labels) +
                 "), one colour scale; language order as in Figure 1. Hover a cell for its "
                 "value and interval.");
    b.end_section();
}

// ---- Per-layer curves ----

std::vector<double> as_double(const std::vector<int>& v) {
    return {v.begin(), v.end()};
}

void layer_curves(const Study& s, Builder& b) {
    b.section("layers", "Per-layer curves",
              "Solid lines: the statistic with its 95% bootstrap band. Dashed: the same-language "
              "split-half floor (sampling noise of JSD). Dotted: the 95th percentile of the "
              "permutation null (language labels shuffled across documents).");
    const Trace& t0 = s.traces.front();
    LineChartSpec jsd{.title = "Mean pairwise JSD per layer",
                      .x_label = "layer",
                      .y_label = "mean JSD over language pairs (bits)",
                      .x = as_double(t0.layers)};
    LineChartSpec nmi{.title = "Language specialisation (NMI) per layer",
                      .x_label = "layer",
                      .y_label = "NMI(language; expert)",
                      .x = as_double(t0.layers)};
    LineChartSpec ent{.title = "Routing entropy per layer",
                      .x_label = "layer",
                      .y_label = "mean entropy over languages (bits)",
                      .x = as_double(t0.layers)};
    Csv csv({"checkpoint", "layer", "metric", "value", "lo", "hi", "split_half_floor", "null_mean",
             "null_p95", "permutation_p"});
    double emax = 0;
    for (size_t ti = 0; ti < s.traces.size(); ++ti) {
        const Trace& t = s.traces[ti];
        if (t.layers != t0.layers)
            fail(kComponent,
                 "analysis: trace '{}' records other layers than trace '{}'; per-layer "
                 "curves need the same layers in every trace",
                 t.label, t0.label);
        const std::string color = category_color(static_cast<int>(ti));
        Series sj = line_series(t.label, color),
               sf = line_series(t.label + " split-half floor", color, "6 3", false),
               sn = line_series(t.label + " null p95", color, "2 3", false);
        Series mi = line_series(t.label, color),
               mn = line_series(t.label + " null p95", color, "2 3", false);
        Series en = line_series(t.label, color);
        const Node jl = t.node["jsd"]["layers"];
        const Node sl = t.node["specialization"]["layers"];
        const Node el = t.node["entropy"]["mean_over_languages"];
        emax = std::max(emax, t.node["entropy"]["max"].num());
        for (size_t r = 0; r < t.layers.size(); ++r) {
            const Ci m = ci(jl[r]["mean_bits"]);
            const Node mp = jl[r]["mean_permutation"];
            const double floor = jl[r]["mean_split_half_bits"].num();
            const double p95 = mp.is_null() ? kNoValue : mp["null_p95"].num();
            sj.y.push_back(m.v), sj.lo.push_back(m.lo), sj.hi.push_back(m.hi);
            sf.y.push_back(floor);
            sn.y.push_back(p95);
            csv.cell(t.label).cell(t.layers[r]).cell("mean_jsd_bits").cell(m).cell(floor);
            csv.cell(mp.is_null() ? kNoValue : mp["null_mean"].num()).cell(p95);
            csv.cell(mp.is_null() ? kNoValue : mp["p_value"].num());
            csv.end();
            const Ci v = ci(sl[r]["nmi"]);
            const Node np = sl[r]["permutation"];
            mi.y.push_back(v.v), mi.lo.push_back(v.lo), mi.hi.push_back(v.hi);
            mn.y.push_back(np.is_null() ? kNoValue : np["null_p95"].num());
            csv.cell(t.label).cell(t.layers[r]).cell("nmi").cell(v).cell(kNoValue);
            csv.cell(np.is_null() ? kNoValue : np["null_mean"].num());
            csv.cell(np.is_null() ? kNoValue : np["null_p95"].num());
            csv.cell(np.is_null() ? kNoValue : np["p_value"].num());
            csv.end();
            const Ci h = ci(el[r]);
            en.y.push_back(h.v), en.lo.push_back(h.lo), en.hi.push_back(h.hi);
            csv.cell(t.label).cell(t.layers[r]).cell("mean_entropy_bits").cell(h);
            csv.cell(kNoValue).cell(kNoValue).cell(kNoValue).cell(kNoValue);
            csv.end();
        }
        jsd.series.push_back(std::move(sj));
        jsd.series.push_back(std::move(sf));
        jsd.series.push_back(std::move(sn));
        nmi.series.push_back(std::move(mi));
        nmi.series.push_back(std::move(mn));
        ent.series.push_back(std::move(en));
    }
    Series top = line_series("uniform routing (log2 E)", "#555", "6 3", false);
    top.y.assign(t0.layers.size(), emax);
    ent.series.push_back(std::move(top));
    b.figure("fig3_mean_jsd_by_layer.svg", line_chart(jsd),
             "Mean JSD over all language pairs per layer, with the mean split-half floor and the "
             "permutation null of the same mean.");
    b.figure("fig4_nmi_by_layer.svg", line_chart(nmi),
             "Normalised mutual information between language and expert (routing slots weighted "
             "by each language's share of tokens): 0 = routing ignores language, 1 = the expert "
             "determines the language.");
    b.figure("fig5_entropy_by_layer.svg", line_chart(ent),
             "Routing entropy of each language's expert distribution, averaged over languages.");
    b.table("layer_curves.csv", csv);
    b.end_section();
}

// ---- Expert usage ----

void expert_usage(const Study& s, Builder& b) {
    b.section("experts", "Expert usage per language",
              "Each panel is one layer: rows are languages, columns experts 0…E−1, colour the "
              "share of the language's top-k routing slots that go to the expert. Framed cells: "
              "the expert is specific to that language; triangles: shared by every language.");
    Csv csv({"checkpoint", "layer", "language", "expert", "probability", "specific", "shared"});
    for (size_t ti = 0; ti < s.traces.size(); ++ti) {
        const Trace& t = s.traces[ti];
        const std::string est = t.node["estimator"].str();
        const Node dist = t.node["distributions"]["estimators"][est];
        const Node spec = t.node["specific_experts"]["layers"];
        HeatmapSpec h;
        h.title = fmt::format("Expert usage by language · {}", t.label);
        h.row_labels = s.codes();
        h.row_emph = s.emph_all();
        h.row_groups = s.group;
        for (int e = 0; e < t.E; ++e)
            h.col_labels.push_back(std::to_string(e));
        // At least 7 px per expert so that language labels fit; 64 experts give two panels a row.
        h.cell = std::clamp(330.0 / t.E, 7.0, 12.0);
        h.labels = true;
        h.values_in_cells = false;
        h.columns = std::max(1, static_cast<int>(1150 / (t.E * h.cell + 60)));
        h.x_label = "expert";
        h.scale_label = "share";
        h.vmin = 0;
        h.outline_legend = "language-specific expert";
        h.mark_legend = "expert shared by every language";
        if (s.any_emph()) h.emph_legend = "Stage 2 language";
        std::vector<HeatmapPanel> panels;
        const size_t n = s.langs.size(), E = static_cast<size_t>(t.E);
        for (size_t r = 0; r < t.layers.size(); ++r) {
            HeatmapPanel p;
            p.title = layer_name(t.layers[r]);
            p.values.assign(n * E, kNoValue);
            p.tooltips.assign(n * E, {});
            std::set<std::pair<int, int>> specific;
            std::set<int> shared;
            const Node sl = spec[r];
            for (size_t i = 0; i < sl["specific"].size(); ++i) {
                const Node x = sl["specific"][i];
                const std::string code = x["language"].str();
                for (size_t a = 0; a < n; ++a)
                    if (s.langs[a].code == code)
                        specific.insert({static_cast<int>(a), x["expert"].integer()});
            }
            for (size_t i = 0; i < sl["shared"].size(); ++i)
                shared.insert(sl["shared"][i]["expert"].integer());
            for (size_t a = 0; a < n; ++a) {
                auto it = t.index.find(s.langs[a].code);
                if (it == t.index.end()) continue;
                const Node row = dist[static_cast<size_t>(it->second)][r];
                for (size_t e = 0; e < E; ++e) {
                    const double v = row[e].num();
                    const bool sp = specific.count({static_cast<int>(a), static_cast<int>(e)}) > 0;
                    const bool sh = shared.count(static_cast<int>(e)) > 0;
                    p.values[a * E + e] = v;
                    p.tooltips[a * E + e] = fmt::format(
                        "{}, {}, {}, expert {}: {}{}{}", s.langs[a].code, t.label,
                        layer_name(t.layers[r]), e, format_num(v, 4),
                        sp ? " (specific to this language)" : "", sh ? " (shared)" : "");
                    csv.cell(t.label).cell(t.layers[r]).cell(s.langs[a].code);
                    csv.cell(static_cast<int>(e)).cell(v).cell(sp ? 1 : 0).cell(sh ? 1 : 0);
                    csv.end();
                }
            }
            for (const auto& c : specific)
                p.outlined.push_back(c);
            p.marked_cols.assign(shared.begin(), shared.end());
            panels.push_back(std::move(p));
        }
        b.figure(fmt::format("fig_expert_usage_{}.svg", ti + 1), heatmap_figure(h, panels),
                 fmt::format("Expert usage of every language at every layer of {} ({} experts, "
                             "top-{}; estimator: {}).",
                             html_escape(t.label), t.E, t.K, html_escape(est)));
    }
    b.table("expert_usage.csv", csv);
    b.end_section();
}

// ---- Reuse ----

void reuse(const Study& s, Builder& b) {
    bool any = false;
    for (const Trace& t : s.traces)
        any = any || t.node["reuse"]["languages"].size() > 0;
    if (!any) return;
    b.section("reuse", "Expert reuse by low-resource languages",
              "For each language with a related high-resource language: the share of its "
              "routing mass that falls on the related language's top-m experts, beside the same "
              "share for each unrelated high-resource language. Dashed mark: a random set of m "
              "experts (m/E).");
    Csv csv({"checkpoint", "layer", "language", "related", "target", "kind", "share", "lo", "hi",
             "random_expected", "random_p_related"});
    for (size_t ti = 0; ti < s.traces.size(); ++ti) {
        const Trace& t = s.traces[ti];
        const Node rl = t.node["reuse"]["languages"];
        if (rl.size() == 0) continue;
        const int m = t.node["reuse"]["m"].integer();
        BarChartSpec bc;
        const size_t last = t.layers.size() - 1;
        bc.title = fmt::format("Reuse of high-resource experts · {} · {}", t.label,
                               layer_name(t.layers[last]));
        bc.y_label = fmt::format("share of routing mass on top-{} experts", m);
        bc.legend = {{"related language", category_color(0)},
                     {"unrelated high-resource", "#bbbbbb"}};
        bc.reference_legend = "random set of m experts";
        for (size_t i = 0; i < rl.size(); ++i) {
            const Node li = rl[i];
            const std::string code = li["language"].str(), rel = li["related"].str();
            for (size_t r = 0; r < t.layers.size(); ++r) {
                const Node L = li["layers"][r];
                const double expected = L["random"]["expected"].num();
                const double prel = L["random"]["p_value_related"].num();
                csv.cell(t.label).cell(t.layers[r]).cell(code).cell(rel).cell(code).cell("self");
                csv.cell(ci(L["self"])).cell(expected).cell(prel);
                csv.end();
                csv.cell(t.label).cell(t.layers[r]).cell(code).cell(rel).cell(rel).cell("related");
                csv.cell(ci(L["related"])).cell(expected).cell(prel);
                csv.end();
                for (size_t u = 0; u < L["unrelated"].size(); ++u) {
                    const Node un = L["unrelated"][u];
                    csv.cell(t.label).cell(t.layers[r]).cell(code).cell(rel);
                    csv.cell(un["language"].str()).cell("unrelated").cell(ci(un["share"]));
                    csv.cell(expected).cell(prel);
                    csv.end();
                }
            }
            const Node L = li["layers"][last];
            BarGroup g{.label = code + " (" + rel + ")",
                       .emph = true,
                       .bars = {},
                       .reference = L["random"]["expected"].num()};
            const Ci rc = ci(L["related"]);
            g.bars.push_back(
                {rel, rc.v, rc.lo, rc.hi, category_color(0),
                 fmt::format("{} on {}'s top-{} experts: {}", code, rel, m, rc.str(4))});
            for (size_t u = 0; u < L["unrelated"].size(); ++u) {
                const Node un = L["unrelated"][u];
                const Ci uc = ci(un["share"]);
                g.bars.push_back({un["language"].str(), uc.v, uc.lo, uc.hi, "#bbbbbb",
                                  fmt::format("{} on {}'s top-{} experts: {}", code,
                                              un["language"].str(), m, uc.str(4))});
            }
            bc.groups.push_back(std::move(g));
        }
        b.figure(fmt::format("fig_reuse_{}.svg", ti + 1), bar_chart(bc),
                 fmt::format("{}: share of each low-resource language's routing on the top-{} "
                             "experts of its related language (blue) and of each unrelated "
                             "high-resource language (grey), {}, with 95% intervals.",
                             html_escape(t.label), m, layer_name(t.layers[last])));
    }
    b.table("reuse.csv", csv);
    b.end_section();
}

// ---- Routing and quality ----

void performance(const JsonInput& analysis, Builder& b) {
    const Node r = root(analysis);
    if (!r.has("routing_performance")) return;
    const Node rp = r["routing_performance"];
    b.section("performance", "Routing and held-out quality (correlational)",
              "Across languages, is a language's routing at a layer related to its held-out bits "
              "per byte? Distinctiveness = the language's mean JSD to the other languages. "
              "Within-checkpoint: Spearman correlation across languages inside each checkpoint, "
              "averaged over checkpoints. Pooled: over all (language, checkpoint) points, which "
              "also carries the effect of training (it moves routing and loss together). Bands: "
              "95% cluster bootstrap over languages. Correlation is not causation; the ablations "
              "are the causal test.");
    if (rp.has("reason")) {
        b.paragraph("Not available: " + html_escape(rp["reason"].str()));
        b.end_section();
        return;
    }
    const Node layers = rp["layers"];
    LineChartSpec lc;
    lc.title = "Routing vs bits per byte across languages";
    lc.width = 780;
    lc.x_label = "layer";
    lc.y_label = "Spearman correlation with bits/byte";
    lc.ymin = -1;
    lc.ymax = 1;
    struct Pick {
        const char* metric;
        const char* stat;
        const char* name;
    };
    const Pick picks[] = {
        {"distinctiveness", "within_spearman", "distinctiveness, within checkpoint"},
        {"distinctiveness", "spearman", "distinctiveness, pooled"},
        {"entropy", "within_spearman", "entropy, within checkpoint"},
    };
    Csv csv({"layer", "metric", "statistic", "value", "lo", "hi"});
    for (size_t i = 0; i < layers.size(); ++i) {
        lc.x.push_back(layers[i]["layer"].integer());
        for (const char* m : {"distinctiveness", "entropy"})
            for (const std::string& st : layers[i][m].keys()) {
                csv.cell(layers[i]["layer"].integer()).cell(m).cell(st).cell(ci(layers[i][m][st]));
                csv.end();
            }
    }
    for (size_t k = 0; k < std::size(picks); ++k) {
        Series se = line_series(picks[k].name, category_color(static_cast<int>(k) + 3),
                                k == 1 ? "6 3" : "");
        for (size_t i = 0; i < layers.size(); ++i) {
            const Ci c = ci(layers[i][picks[k].metric][picks[k].stat]);
            se.y.push_back(c.v);
            se.lo.push_back(c.lo);
            se.hi.push_back(c.hi);
        }
        lc.series.push_back(std::move(se));
    }
    Series zero = line_series("no relation", "#555", "2 3", false);
    zero.y.assign(layers.size(), 0.0);
    lc.series.push_back(std::move(zero));
    std::string checkpoints;
    for (size_t i = 0; i < rp["checkpoints"].size(); ++i)
        checkpoints += (i ? ", " : "") + rp["checkpoints"][i].str();
    b.figure("fig_routing_vs_quality.svg", line_chart(lc),
             fmt::format("Spearman correlation between a language's routing statistic and its "
                         "held-out bits per byte ({} points: {} languages × checkpoints {}), with "
                         "95% intervals.",
                         rp["points"].integer(), rp["languages"].size(), html_escape(checkpoints)));
    b.table("routing_vs_quality.csv", csv);
    b.end_section();
}

// ---- Drift ----

void drift(const JsonInput& analysis, const Study& s, Builder& b) {
    const Node r = root(analysis);
    if (!r.has("drift") || r["drift"].size() == 0) return;
    const Node d = r["drift"];
    b.section("drift", "Router drift between checkpoints",
              "For the same held-out tokens, how far each language's routing moved from one "
              "checkpoint to the next: JSD between its expert distributions (colour) and the "
              "mean top-k overlap per token (tooltip).");
    Csv csv({"from", "to", "language", "layer", "jsd_bits", "lo", "hi", "overlap", "overlap_lo",
             "overlap_hi"});
    for (size_t i = 0; i < d.size(); ++i) {
        const Node di = d[i];
        const std::string from = di["from"].str(), to = di["to"].str();
        const Node langs = di["languages"];
        std::map<std::string, size_t> idx;
        for (size_t a = 0; a < langs.size(); ++a)
            idx[langs[a]["language"].str()] = a;
        std::vector<int> layers;
        for (size_t r2 = 0; langs.size() > 0 && r2 < langs[0]["layers"].size(); ++r2)
            layers.push_back(langs[0]["layers"][r2]["layer"].integer());
        HeatmapSpec h;
        h.title = fmt::format("Router drift {} → {}", from, to);
        h.row_labels = s.codes();
        h.row_emph = s.emph_all();
        h.row_groups = s.group;
        for (int l : layers)
            h.col_labels.push_back(std::to_string(l));
        h.cell = 26;
        h.x_label = "layer";
        h.scale_label = "bits";
        h.vmin = 0;
        if (s.any_emph()) h.emph_legend = "Stage 2 language";
        HeatmapPanel p;
        p.title = "JSD(" + from + ", " + to + ")";
        const size_t n = s.langs.size(), R = layers.size();
        p.values.assign(n * R, kNoValue);
        p.tooltips.assign(n * R, {});
        for (size_t a = 0; a < n; ++a) {
            auto it = idx.find(s.langs[a].code);
            if (it == idx.end()) continue;
            const Node ll = langs[it->second]["layers"];
            for (size_t r2 = 0; r2 < R && r2 < ll.size(); ++r2) {
                const Ci j = ci(ll[r2]["jsd_bits"]), o = ci(ll[r2]["overlap"]);
                p.values[a * R + r2] = j.v;
                p.tooltips[a * R + r2] =
                    fmt::format("{}, {} → {}, layer {}: JSD {} bits; top-k overlap {}",
                                s.langs[a].code, from, to, layers[r2], j.str(4), o.str(3));
                csv.cell(from).cell(to).cell(s.langs[a].code).cell(layers[r2]).cell(j).cell(o);
                csv.end();
            }
        }
        b.figure(fmt::format("fig_drift_{}.svg", i + 1), heatmap_figure(h, {p}),
                 fmt::format("Routing change from {} to {} on identical held-out tokens, per "
                             "language and layer (values: JSD in bits).",
                             html_escape(from), html_escape(to)));
    }
    b.table("drift.csv", csv);
    b.end_section();
}

// ---- Ablation ----

// "FIRST–LAST" of an interventions.json layer range.
std::string layer_span(const Node& range) {
    const Node l = range["layers"];
    return fmt::format("{}–{}", l[0].integer(), l[l.size() - 1].integer());
}

void ablation(const JsonInput& in, const Study& s, Builder& b) {
    const Node r = root(in);
    if (r["kind"].str() != "polymoe.interventions")
        fail(kComponent, "{}: $.kind: expected polymoe.interventions, found {}", in.path,
             r["kind"].str());
    const std::string mode = r["mode"].str(), selection = r["selection"].str();
    b.section("ablation", "Causal test: expert ablation",
              fmt::format("Held-out cross-entropy change (nats per token) when the experts "
                          "selected for the row language ({}) are removed ({}) in the given "
                          "layers, for every evaluated language (columns); beside it the same "
                          "number of random experts. The causal claim holds for a language when "
                          "its diagonal exceeds its off-diagonal by more than the random control "
                          "does (specificity excess, with 95% interval).",
                          html_escape(selection), html_escape(mode)));
    Csv mat({"layers", "ablated", "evaluated", "delta_ce", "lo", "hi", "delta_ce_random",
             "random_lo", "random_hi"});
    Csv spc({"layers", "ablated", "specificity", "lo", "hi", "specificity_random", "random_lo",
             "random_hi", "excess", "excess_lo", "excess_hi"});
    const Node ranges = r["ranges"];
    for (size_t k = 0; k < ranges.size(); ++k) {
        const Node rg = ranges[k];
        const std::string span = layer_span(rg);
        const Node rows = rg["rows"];
        std::vector<std::string> ablated;
        for (size_t i = 0; i < rows.size(); ++i)
            ablated.push_back(rows[i]["ablated"].str());
        // Rows and columns in the study's script order (languages absent from the analysis last).
        std::vector<std::string> order = s.codes();
        std::vector<int> groups = s.group;
        std::vector<bool> emph = s.emph_all();
        const size_t n = order.size();
        HeatmapSpec h;
        h.title = fmt::format("ΔCE when ablating each language's experts · layers {}", span);
        h.row_labels = h.col_labels = order;
        h.row_emph = h.col_emph = emph;
        h.row_groups = h.col_groups = groups;
        h.cell = 30;
        h.y_label = "experts ablated (language)";
        h.x_label = "language evaluated";
        h.scale_label = "nats";
        if (s.any_emph()) h.emph_legend = "Stage 2 language";
        HeatmapPanel pa, pr;
        pa.title = "selected experts";
        pr.title = "random experts (control)";
        for (auto* p : {&pa, &pr}) {
            p->values.assign(n * n, kNoValue);
            p->tooltips.assign(n * n, {});
        }
        BarChartSpec bc;
        bc.title = fmt::format("Ablation specificity · layers {}", span);
        bc.y_label = "ΔCE own − mean ΔCE others (nats)";
        bc.legend = {{"selected experts", category_color(0)}, {"random experts", "#bbbbbb"}};
        for (size_t a = 0; a < n; ++a) {
            auto it = std::find(ablated.begin(), ablated.end(), order[a]);
            if (it == ablated.end()) continue;
            const Node row = rows[static_cast<size_t>(it - ablated.begin())];
            for (size_t c = 0; c < n; ++c) {
                if (!row["delta_ce"].has(order[c])) continue;
                const Ci d = ci(row["delta_ce"][order[c]]);
                const Ci dr = row["delta_ce_random"].has(order[c])
                                  ? ci(row["delta_ce_random"][order[c]])
                                  : Ci{};
                pa.values[a * n + c] = d.v;
                pr.values[a * n + c] = dr.v;
                pa.tooltips[a * n + c] = fmt::format(
                    "ablate {}'s experts, evaluate {}: ΔCE {} nats", order[a], order[c], d.str(4));
                pr.tooltips[a * n + c] =
                    fmt::format("ablate random experts (as many as {}'s), evaluate {}: ΔCE {} nats",
                                order[a], order[c], dr.str(4));
                mat.cell(span).cell(order[a]).cell(order[c]).cell(d).cell(dr);
                mat.end();
            }
            const Ci sp = ci(row["specificity"]), sr = ci(row["specificity_random"]),
                     ex = ci(row["specificity_excess"]);
            spc.cell(span).cell(order[a]).cell(sp).cell(sr).cell(ex);
            spc.end();
            BarGroup g{.label = order[a], .emph = emph[a], .bars = {}, .reference = kNoValue};
            g.bars.push_back({"selected", sp.v, sp.lo, sp.hi, category_color(0), {}});
            g.bars.push_back({"random", sr.v, sr.lo, sr.hi, "#bbbbbb", {}});
            bc.groups.push_back(std::move(g));
        }
        b.figure(fmt::format("fig_ablation_matrix_{}.svg", k + 1), heatmap_figure(h, {pa, pr}),
                 fmt::format("ΔCE (nats per token) per ablated language (rows) and evaluated "
                             "language (columns), layers {}; left the language's {} experts, "
                             "right as many random experts.",
                             span, html_escape(selection)));
        b.figure(fmt::format("fig_ablation_specificity_{}.svg", k + 1), bar_chart(bc),
                 fmt::format("Specificity (own ΔCE minus the mean ΔCE of the other languages) of "
                             "ablating each language's {} experts vs random experts, layers {}, "
                             "95% intervals.",
                             html_escape(selection), span));
    }
    b.table("ablation_delta_ce.csv", mat);
    b.table("ablation_specificity.csv", spc);
    b.end_section();
}

// ---- Eval ----

void evaluation(const JsonInput& in, const Study& s, Builder& b) {
    const Node r = root(in);
    if (r["kind"].str() != "polymoe.eval")
        fail(kComponent, "{}: $.kind: expected polymoe.eval, found {}", in.path, r["kind"].str());
    const Node models = r["models"];
    b.section("eval", "Held-out quality per language",
              "Bits per byte (cross-entropy in bits over the UTF-8 bytes of the predicted text, "
              "comparable across languages and tokenizers) and perplexity per token, with 95% "
              "bootstrap intervals over documents.");
    Csv csv({"checkpoint", "language", "documents", "tokens", "bytes", "bits_per_byte", "bpb_lo",
             "bpb_hi", "perplexity", "ppl_lo", "ppl_hi", "ce_nats", "ce_lo", "ce_hi"});
    std::string t =
        "<table>\n<tr><th class=\"l\">language</th><th class=\"l\">script</th>"
        "<th class=\"l\">stage</th>";
    for (size_t m = 0; m < models.size(); ++m)
        t += fmt::format("<th>{} bits/byte</th><th>{} perplexity</th>",
                         html_escape(models[m]["label"].str()),
                         html_escape(models[m]["label"].str()));
    t += "</tr>\n";
    BarChartSpec bc;
    bc.title = "Held-out bits per byte by language and checkpoint";
    bc.y_label = "bits per byte";
    bc.bar_width = 12;
    for (size_t m = 0; m < models.size(); ++m)
        bc.legend.push_back({models[m]["label"].str(), category_color(static_cast<int>(m))});
    for (size_t a = 0; a < s.langs.size(); ++a) {
        const Lang& l = s.langs[a];
        t += fmt::format(
            "<tr><td class=\"l{}\">{}{}</td><td class=\"l\">{}</td><td "
            "class=\"l\">{}</td>",
            s.emph(a) ? " em" : "", html_escape(l.code), s.emph(a) ? "*" : "",
            html_escape(l.script), html_escape(l.stage));
        BarGroup g{.label = l.code, .emph = s.emph(a), .bars = {}, .reference = kNoValue};
        for (size_t m = 0; m < models.size(); ++m) {
            const Node langs = models[m]["languages"];
            if (!langs.has(l.code)) {
                t += "<td>–</td><td>–</td>";
                continue;
            }
            const Node x = langs[l.code];
            const Ci bpb = ci(x["bits_per_byte"]), ppl = ci(x["perplexity"]), ce = ci(x["ce_nats"]);
            t += fmt::format("<td>{}</td><td>{}</td>", bpb.str(3),
                             ppl.v < 1e4 ? ppl.str(2) : fmt::format("{:.3g}", ppl.v));
            g.bars.push_back({models[m]["label"].str(),
                              bpb.v,
                              bpb.lo,
                              bpb.hi,
                              category_color(static_cast<int>(m)),
                              {}});
            csv.cell(models[m]["label"].str()).cell(l.code).cell(x["documents"].integer());
            csv.cell(x["tokens"].integer()).cell(x["bytes"].integer());
            csv.cell(bpb).cell(ppl).cell(ce);
            csv.end();
        }
        t += "</tr>\n";
        bc.groups.push_back(std::move(g));
    }
    t += "</table>\n<p class=\"small\">* Stage 2 (low-resource) language. Data: " +
         html_escape(r["data"].str()) + ", split " + html_escape(r["split"].str()) + ".</p>\n";
    b.figure("fig_eval_bits_per_byte.svg", bar_chart(bc),
             "Held-out bits per byte per language for each checkpoint, 95% intervals.");
    b.html(t);
    b.table("eval.csv", csv);
    b.end_section();
}

// ---- Findings ----

// The analysis's own reason why a statistic is missing (count tables carry
// traces[i].availability[name].reason), or `fallback`.
std::string unavailable_reason(const Trace& t, const char* name, const std::string& fallback) {
    if (!t.node.has("availability") || !t.node["availability"].has(name)) return fallback;
    const Node a = t.node["availability"][name];
    if (!a.has("reason") || a["reason"].is_null()) return fallback;
    return a["reason"].str();
}

void jsd_findings(const Study& s, Builder& b) {
    for (const Trace& t : s.traces) {
        const size_t r = t.layers.size() - 1;
        const Node L = t.node["jsd"]["layers"][r];
        const Ci m = ci(L["mean_bits"]);
        const double floor = L["mean_split_half_bits"].num();
        const Node mp = L["mean_permutation"];
        const double p95 = mp.is_null() ? kNoValue : mp["null_p95"].num();
        const bool c1 = m.above(floor), c2 = m.above(p95);
        if (!std::isfinite(floor) && !std::isfinite(p95)) {
            b.finding(fmt::format(
                "{}: mean pairwise routing JSD at {} is {} bits; no baseline to compare it with "
                "({}).",
                t.label, layer_name(t.layers[r]), m.str(3),
                unavailable_reason(t, "split_half_jsd",
                                   "the analysis has no split-half floor or permutation null")));
            continue;
        }
        b.finding(fmt::format(
            "{}: mean pairwise routing JSD at {} is {} bits vs split-half floor {} and "
            "permutation-null 95th percentile {}; {}.",
            t.label, layer_name(t.layers[r]), m.str(3), format_num(floor, 3), format_num(p95, 3),
            c1 && c2 ? "clears both baselines"
            : c1     ? "clears the split-half floor but not the permutation null"
            : c2     ? "clears the permutation null but not the split-half floor"
                     : "does not clear its baselines"));
    }
    for (size_t i = 1; i < s.traces.size(); ++i) {
        const Trace &a = s.traces[i - 1], &c = s.traces[i];
        const Ci x = ci(a.node["jsd"]["layers"][a.layers.size() - 1]["mean_bits"]);
        const Ci y = ci(c.node["jsd"]["layers"][c.layers.size() - 1]["mean_bits"]);
        const bool apart = x.below(y.lo) || x.above(y.hi);
        b.finding(fmt::format(
            "Last-layer mean JSD from {} to {}: {} → {} bits ({}).", a.label, c.label, x.str(3),
            y.str(3),
            apart ? "the intervals do not overlap" : "the intervals overlap; no clear change"));
    }
}

void specialization_findings(const Study& s, Builder& b) {
    for (const Trace& t : s.traces) {
        if (t.layers.size() < 2) continue;
        const Ci d = ci(t.node["specialization"]["trend"]["last_minus_first"]);
        const Node sl = t.node["specialization"]["layers"];
        const Ci first = ci(sl[0]["nmi"]), last = ci(sl[t.layers.size() - 1]["nmi"]);
        std::string verdict =
            !std::isfinite(d.lo)
                ? "no interval to judge a trend (" +
                      unavailable_reason(t, "bootstrap_ci", "no bootstrap in this analysis") + ")"
            : d.above(0) ? "later layers are more language-specific (interval above 0)"
            : d.below(0) ? "later layers are less language-specific (interval below 0)"
                         : "no clear trend (interval includes 0)";
        b.finding(
            fmt::format("{}: language–expert NMI {} at {} and {} at {}; last − first = {}: "
                        "{}.",
                        t.label, first.str(3), layer_name(t.layers.front()), last.str(3),
                        layer_name(t.layers.back()), d.str(3), verdict));
    }
}

void reuse_findings(const Study& s, Builder& b) {
    const Trace& t = s.traces.back();
    const Node rl = t.node["reuse"]["languages"];
    const size_t last = t.layers.size() - 1;
    for (size_t i = 0; i < rl.size(); ++i) {
        const Node li = rl[i];
        const Node L = li["layers"][last];
        const Ci margin = ci(L["margin"]), rel = ci(L["related"]);
        const double p = L["random"]["p_value_related"].num();
        b.finding(fmt::format(
            "{}, {}: {} puts {} of its routing on {}'s top experts; margin over unrelated "
            "high-resource languages {} ({}); random-set p = {}.",
            t.label, layer_name(t.layers[last]), li["language"].str(), rel.str(3),
            li["related"].str(), margin.str(3),
            margin.above(0)   ? "related experts are reused more"
            : margin.below(0) ? "related experts are reused less"
                              : "no clear preference",
            format_num(p, 3)));
    }
}

void ablation_findings(const JsonInput& in, Builder& b) {
    const Node ranges = root(in)["ranges"];
    for (size_t k = 0; k < ranges.size(); ++k) {
        const Node rg = ranges[k];
        const std::string span = layer_span(rg);
        const Node rows = rg["rows"];
        std::vector<std::string> yes, no;
        for (size_t i = 0; i < rows.size(); ++i)
            (ci(rows[i]["specificity_excess"]).above(0) ? yes : no)
                .push_back(rows[i]["ablated"].str());
        auto join = [](const std::vector<std::string>& v) {
            std::string s;
            for (const auto& x : v)
                s += (s.empty() ? "" : ", ") + x;
            return s.empty() ? std::string("none") : s;
        };
        b.finding(fmt::format(
            "Ablation (layers {}): removing a language's own experts hurts it more than the other "
            "languages, beyond the random-expert control, for {} of {} languages ({}); not for: "
            "{}.",
            span, yes.size(), rows.size(), join(yes), join(no)));
        const Node ru = rg["reuse"];
        for (size_t i = 0; i < ru.size(); ++i) {
            const Ci d = ci(ru[i]["difference"]);
            b.finding(fmt::format(
                "Transfer test (layers {}): ablating {}'s experts raises {}'s loss by {} nats more "
                "than ablating unrelated high-resource languages' experts{}.",
                span, ru[i]["related"].str(), ru[i]["language"].str(), d.str(3),
                d.above(0) ? " (interval above 0)"
                           : " (interval not above 0: no evidence that it relies on them more)"));
        }
    }
}

void performance_findings(const JsonInput& analysis, Builder& b) {
    const Node r = root(analysis);
    if (!r.has("routing_performance")) return;
    const Node rp = r["routing_performance"];
    if (rp.has("reason")) {
        b.finding("Routing vs held-out quality: not computed (" + rp["reason"].str() + ").");
        return;
    }
    const Node L = rp["layers"][rp["layers"].size() - 1];
    const Ci within = ci(L["distinctiveness"]["within_spearman"]);
    const Ci pooled = ci(L["distinctiveness"]["spearman"]);
    auto verdict = [](const Ci& c) {
        return c.below(0)   ? "more distinct routing goes with lower bits/byte"
               : c.above(0) ? "more distinct routing goes with higher bits/byte"
                            : "no clear relation: the interval includes 0";
    };
    b.finding(fmt::format(
        "Routing vs held-out quality at {} (correlational, {} languages): Spearman correlation of "
        "a language's distinctiveness with its bits/byte is {} within checkpoints ({}) and {} "
        "pooled over checkpoints ({}; the pooled number includes the effect of training on both).",
        layer_name(L["layer"].integer()), rp["languages"].size(), within.str(2), verdict(within),
        pooled.str(2), verdict(pooled)));
}

void eval_findings(const JsonInput& in, const Study& s, Builder& b) {
    const Node models = root(in)["models"];
    if (models.size() < 2) return;
    const Node first = models[0], last = models[models.size() - 1];
    for (size_t a = 0; a < s.langs.size(); ++a) {
        const std::string& code = s.langs[a].code;
        if (!s.emph(a) || !first["languages"].has(code) || !last["languages"].has(code)) continue;
        const Ci x = ci(first["languages"][code]["bits_per_byte"]);
        const Ci y = ci(last["languages"][code]["bits_per_byte"]);
        b.finding(fmt::format("{} (Stage 2): held-out bits/byte {} at {} → {} at {} ({}).", code,
                              x.str(3), first["label"].str(), y.str(3), last["label"].str(),
                              y.below(x.lo)   ? "lower, intervals do not overlap"
                              : y.above(x.hi) ? "higher, intervals do not overlap"
                                              : "intervals overlap"));
    }
}

std::string provenance(const ReportInputs& in, const Study& s) {
    std::string h =
        "<section id=\"inputs\">\n<h2>Inputs</h2>\n<table>\n<tr><th class=\"l\">file"
        "</th><th class=\"l\">content</th></tr>\n";
    h += fmt::format(
        "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">routing analysis "
        "of {} trace(s)</td></tr>\n",
        html_escape(in.analysis.path), s.traces.size());
    if (in.eval)
        h += fmt::format(
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">held-out "
            "evaluation</td></tr>\n",
            html_escape(in.eval->path));
    if (in.interventions)
        h += fmt::format(
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">ablations"
            "</td></tr>\n",
            html_escape(in.interventions->path));
    h += "</table>\n<table>\n<tr><th class=\"l\">checkpoint</th><th class=\"l\">model</th>"
         "<th class=\"l\">data</th><th>layers</th><th>experts</th><th>top-k</th><th>documents"
         "</th><th>tokens</th></tr>\n";
    for (const Trace& t : s.traces) {
        const Node smp = t.node["sample"];
        h += fmt::format(
            "<tr><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td><td "
            "class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}"
            "</td></tr>\n",
            html_escape(t.label), html_escape(t.node["model"].str()),
            html_escape(t.node["data"].str()), t.layers.size(), t.E, t.K,
            format_num(smp["documents"].num(), 0), format_num(smp["tokens"].num(), 0));
    }
    h += "</table>\n<p class=\"small\">Tables of every plotted number are in <code>tables/</code>, "
         "the figures as standalone SVG in <code>figures/</code>. Definitions of every statistic: "
         "<code>docs/analysis.md</code> and the <code>definitions</code> field of the JSON "
         "inputs.</p>\n</section>\n";
    return h;
}

}  // namespace

JsonInput load_input(const std::filesystem::path& path, const std::string& expected_kind) {
    const std::string text = io::detail::read_file(path.string(), kComponent);
    JsonInput in{path.string(), {}};
    try {
        in.doc = json::parse(text);
    } catch (const json::parse_error& e) {
        fail(kComponent, "{}: expected JSON, found a parse error: {}", path.string(), e.what());
    }
    const Node r = root(in);
    if (!in.doc.is_object() || !in.doc.contains("kind"))
        fail(kComponent, "{}: $.kind: expected \"{}\", found none", path.string(), expected_kind);
    if (r["kind"].str() != expected_kind)
        fail(kComponent, "{}: $.kind: expected \"{}\", found \"{}\"", path.string(), expected_kind,
             r["kind"].str());
    return in;
}

RenderedReport render_report(const ReportInputs& in) {
    const Study s = read_study(in.analysis);
    Builder b;
    jsd_findings(s, b);
    specialization_findings(s, b);
    reuse_findings(s, b);
    performance_findings(in.analysis, b);
    if (in.interventions) ablation_findings(*in.interventions, b);
    if (in.eval) eval_findings(*in.eval, s, b);

    jsd_figures(s, b);
    layer_curves(s, b);
    expert_usage(s, b);
    reuse(s, b);
    drift(in.analysis, s, b);
    performance(in.analysis, b);
    if (in.interventions) ablation(*in.interventions, s, b);
    if (in.eval) evaluation(*in.eval, s, b);
    return b.finish(in.title, provenance(in, s));
}

std::filesystem::path write_report(const RenderedReport& r, const std::filesystem::path& out) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const fs::path& d : {out, out / "figures", out / "tables"}) {
        fs::create_directories(d, ec);
        if (ec) fail(kComponent, "{}: cannot create directory: {}", d.string(), ec.message());
    }
    auto put = [](const fs::path& p, const std::string& text) {
        const io::detail::Chunk c{text.data(), text.size()};
        io::detail::write_file_atomic(p.string(), {&c, 1}, kComponent);
    };
    for (const NamedText& f : r.figures)
        put(out / "figures" / f.name, f.text);
    for (const NamedText& t : r.tables)
        put(out / "tables" / t.name, t.text);
    put(out / "report.html", r.html);
    return out / "report.html";
}

}  // namespace polymoe::report
