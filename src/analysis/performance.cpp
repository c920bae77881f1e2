// routing_performance (performance.h). Inputs are the point estimates already in the analysis
// JSON and the eval JSON; the only new statistics are the correlations and their cluster
// bootstrap over languages.
#include "analysis/performance.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <numeric>
#include <span>

#include "analysis/divergence.h"
#include "analysis/json_util.h"
#include "analysis/resample.h"
#include "core/error.h"

namespace polymoe::analysis {

namespace {

using nlohmann::json;
constexpr std::string_view kComponent = "analysis";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double value_of(const json& v) {
    if (v.is_null()) return kNaN;
    if (v.is_number()) return v.get<double>();
    if (v.is_object() && v.contains("value")) return value_of(v.at("value"));
    fail(kComponent, "routing_performance: expected a number or {{value, lo, hi}}, found {}",
         v.type_name());
}

// Average ranks (ties share the mean rank), for Spearman's correlation.
std::vector<double> ranks(std::span<const double> x) {
    std::vector<size_t> order(x.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
    std::vector<double> r(x.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && x[order[j + 1]] == x[order[i]])
            ++j;
        for (size_t k = i; k <= j; ++k)
            r[order[k]] = 0.5 * static_cast<double>(i + j) + 1;
        i = j + 1;
    }
    return r;
}

double spearman(std::span<const double> x, std::span<const double> y) {
    const std::vector<double> rx = ranks(x), ry = ranks(y);
    return pearson(rx, ry);
}

// Points of one (metric, layer): x[a][c], y[a][c] for languages a and matched checkpoints c.
struct Table {
    int nL = 0, nC = 0;
    std::vector<double> x, y;  // [nL][nC]
};

// The correlations of a table restricted to the languages `pick` (with repeats): pooled Pearson
// and Spearman, Pearson and Spearman of the first-to-last changes, and the mean over checkpoints
// of the Spearman correlation within each checkpoint (free of the checkpoint effect that pools
// "more training" on both axes).
constexpr int kNumStats = 5;
std::array<double, kNumStats> correlations(const Table& t, std::span<const int> pick) {
    std::vector<double> px, py, dx, dy, wx, wy;
    double within = 0;
    int n_within = 0;
    for (int c = 0; c < t.nC; ++c) {
        wx.clear();
        wy.clear();
        for (int a : pick) {
            const double x = t.x[static_cast<size_t>(a) * t.nC + c];
            const double y = t.y[static_cast<size_t>(a) * t.nC + c];
            if (std::isfinite(x) && std::isfinite(y)) {
                wx.push_back(x);
                wy.push_back(y);
            }
        }
        const double rho = spearman(wx, wy);
        if (std::isfinite(rho)) {
            within += rho;
            ++n_within;
        }
    }
    for (int a : pick) {
        for (int c = 0; c < t.nC; ++c) {
            const double x = t.x[static_cast<size_t>(a) * t.nC + c];
            const double y = t.y[static_cast<size_t>(a) * t.nC + c];
            if (std::isfinite(x) && std::isfinite(y)) {
                px.push_back(x);
                py.push_back(y);
            }
        }
        if (t.nC >= 2) {
            const size_t o = static_cast<size_t>(a) * t.nC;
            const double ddx = t.x[o + t.nC - 1] - t.x[o], ddy = t.y[o + t.nC - 1] - t.y[o];
            if (std::isfinite(ddx) && std::isfinite(ddy)) {
                dx.push_back(ddx);
                dy.push_back(ddy);
            }
        }
    }
    return {pearson(px, py), spearman(px, py), t.nC >= 2 ? pearson(dx, dy) : kNaN,
            t.nC >= 2 ? spearman(dx, dy) : kNaN, n_within > 0 ? within / n_within : kNaN};
}

json unavailable(const std::string& reason) {
    return {{"definition", "routing_performance"}, {"available", false}, {"reason", reason}};
}

}  // namespace

json routing_performance(const json& analysis, const json& eval, const AnalysisOptions& o) {
    validate_options(o);
    const json& traces = analysis.at("traces");
    if (!eval.contains("models") || !eval.at("models").is_array())
        fail(kComponent, "routing_performance: eval JSON: expected a models array, found none");
    // Checkpoints present in both, in the analysis order.
    std::vector<const json*> tr, ev;
    std::vector<std::string> labels, eval_labels;
    for (const json& m : eval.at("models"))
        eval_labels.push_back(m.at("label").get<std::string>());
    for (const json& t : traces) {
        const std::string label = t.at("label").get<std::string>();
        for (const json& m : eval.at("models"))
            if (m.at("label").get<std::string>() == label) {
                tr.push_back(&t);
                ev.push_back(&m);
                labels.push_back(label);
            }
    }
    if (tr.empty()) {
        std::string a, b;
        for (const json& t : traces)
            a += (a.empty() ? "" : ", ") + t.at("label").get<std::string>();
        for (const auto& l : eval_labels)
            b += (b.empty() ? "" : ", ") + l;
        return unavailable(fmt::format(
            "no checkpoint label is in both the analysis ({}) and the eval ({})", a, b));
    }
    // Languages present in every matched trace and eval model.
    std::vector<std::string> langs;
    for (const json& l : tr.front()->at("languages")) {
        const std::string code = l.at("code").get<std::string>();
        bool everywhere = true;
        for (size_t c = 0; c < tr.size(); ++c) {
            bool in_trace = false;
            for (const json& x : tr[c]->at("languages"))
                in_trace = in_trace || x.at("code").get<std::string>() == code;
            everywhere = everywhere && in_trace && ev[c]->at("languages").contains(code);
        }
        if (everywhere) langs.push_back(code);
    }
    const int nL = static_cast<int>(langs.size()), nC = static_cast<int>(tr.size());
    if (nL < 3)
        return unavailable(fmt::format(
            "{} language(s) are in every matched checkpoint of both files; at least 3 are needed",
            nL));
    const json& layers0 = tr.front()->at("layers");
    for (const json* t : tr)
        if (t->at("layers") != layers0)
            fail(kComponent, "routing_performance: traces '{}' and '{}' record different layers",
                 labels.front(), t->at("label").get<std::string>());
    const int R = static_cast<int>(layers0.size());

    // index of each language in each trace
    std::vector<std::vector<int>> idx(static_cast<size_t>(nC), std::vector<int>(nL, -1));
    for (int c = 0; c < nC; ++c) {
        const json& tl = tr[static_cast<size_t>(c)]->at("languages");
        for (int a = 0; a < nL; ++a)
            for (size_t i = 0; i < tl.size(); ++i)
                if (tl[i].at("code").get<std::string>() == langs[static_cast<size_t>(a)])
                    idx[static_cast<size_t>(c)][static_cast<size_t>(a)] = static_cast<int>(i);
    }
    std::vector<double> bpb(static_cast<size_t>(nL) * nC);
    for (int a = 0; a < nL; ++a)
        for (int c = 0; c < nC; ++c)
            bpb[static_cast<size_t>(a) * nC + c] = value_of(ev[static_cast<size_t>(c)]
                                                                ->at("languages")
                                                                .at(langs[static_cast<size_t>(a)])
                                                                .at("bits_per_byte"));

    static constexpr const char* kMetrics[] = {"distinctiveness", "entropy"};
    static constexpr const char* kStats[kNumStats] = {"pearson", "spearman", "change_pearson",
                                                      "change_spearman", "within_spearman"};
    json out_layers = json::array();
    for (int r = 0; r < R; ++r) {
        json layer = {{"layer", layers0[static_cast<size_t>(r)]}};
        for (int m = 0; m < 2; ++m) {
            Table t{nL, nC, std::vector<double>(bpb.size()), bpb};
            for (int c = 0; c < nC; ++c) {
                const json& T = *tr[static_cast<size_t>(c)];
                const std::vector<int>& ix = idx[static_cast<size_t>(c)];
                for (int a = 0; a < nL; ++a) {
                    const int i = ix[static_cast<size_t>(a)];
                    double x = kNaN;
                    if (m == 0) {
                        // Mean JSD to every other language of the trace.
                        const json& row = T.at("jsd")
                                              .at("layers")
                                              .at(static_cast<size_t>(r))
                                              .at("bits")
                                              .at(static_cast<size_t>(i));
                        double s = 0;
                        int n = 0;
                        for (size_t b = 0; b < row.size(); ++b)
                            if (static_cast<int>(b) != i) {
                                s += value_of(row[b]);
                                ++n;
                            }
                        x = n > 0 ? s / n : kNaN;
                    } else {
                        x = value_of(T.at("entropy")
                                         .at("values")
                                         .at(static_cast<size_t>(i))
                                         .at(static_cast<size_t>(r)));
                    }
                    t.x[static_cast<size_t>(a) * nC + c] = x;
                }
            }
            std::vector<int> all(static_cast<size_t>(nL));
            std::iota(all.begin(), all.end(), 0);
            const std::array<double, kNumStats> point = correlations(t, all);
            std::array<std::vector<double>, kNumStats> reps;
            std::vector<int> pick(static_cast<size_t>(nL));
            for (int b = 0; b < o.bootstrap; ++b) {
                const uint64_t key =
                    stream_key(o.seed, "routing_performance", static_cast<uint64_t>(b));
                for (int a = 0; a < nL; ++a)
                    pick[static_cast<size_t>(a)] = static_cast<int>(
                        draw_below(key, static_cast<uint64_t>(a), static_cast<uint64_t>(nL)));
                const std::array<double, kNumStats> v = correlations(t, pick);
                for (int k = 0; k < kNumStats; ++k)
                    reps[static_cast<size_t>(k)].push_back(v[static_cast<size_t>(k)]);
            }
            json stats = json::object();
            for (int k = 0; k < kNumStats; ++k) {
                Interval iv{kNaN, kNaN, 0};
                if (o.bootstrap > 0)
                    iv = percentile_interval(reps[static_cast<size_t>(k)], o.ci_level);
                stats[kStats[k]] = ci_json(point[static_cast<size_t>(k)], iv);
            }
            layer[kMetrics[m]] = std::move(stats);
        }
        out_layers.push_back(std::move(layer));
    }
    return {{"definition", "routing_performance"},
            {"available", true},
            {"checkpoints", labels},
            {"languages", langs},
            {"performance", "bits_per_byte"},
            {"units",
             {{"distinctiveness", "bits (mean JSD to the other languages)"},
              {"entropy", "bits"},
              {"correlation", "Pearson r / Spearman rho in [-1, 1]"}}},
            {"points", nL * nC},
            {"resampling", "languages (cluster bootstrap), n_boot replicates"},
            {"layers", std::move(out_layers)}};
}

}  // namespace polymoe::analysis
