// Side tables of a trace report (report_context.h): script vs language (vocabulary overlap,
// restricted JSD, JSD-overlap correlation), co-activation pair frequencies and lift, and the
// vocabulary specialisation table (top token ids per expert, per-language rates vs K/E).
#include <algorithm>
#include <cmath>
#include <limits>

#include "analysis/divergence.h"
#include "analysis/report_context.h"

namespace polymoe::analysis {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

using nlohmann::json;

json script_json(const ReportContext& c) {
    const TraceStats& st = c.st;
    const int nL = st.nL, E = st.E, R = st.R;
    json overlap = json::array(), shared = json::array();
    for (int a = 0; a < nL; ++a) {
        json ro = json::array(), rs = json::array();
        for (int b = 0; b < nL; ++b) {
            ro.push_back(num(c.overlap_full[static_cast<size_t>(a) * nL + b]));
            rs.push_back(st.shared_vocab[static_cast<size_t>(a) * nL + b]);
        }
        overlap.push_back(std::move(ro));
        shared.push_back(std::move(rs));
    }
    json layers = json::array();
    std::vector<double> pa(static_cast<size_t>(E)), pb(static_cast<size_t>(E)), x;
    const size_t RE = static_cast<size_t>(R) * E;
    for (int r = 0; r < R; ++r) {
        json m = json::array();
        x.clear();
        for (int a = 0; a < nL; ++a) {
            json row = json::array();
            for (int b = 0; b < nL; ++b) {
                double v = kNaN;
                if (st.has_restricted) {
                    const size_t oa =
                        (static_cast<size_t>(a) * nL + b) * RE + static_cast<size_t>(r) * E;
                    const size_t ob =
                        (static_cast<size_t>(b) * nL + a) * RE + static_cast<size_t>(r) * E;
                    const double ta =
                        normalize(pa, std::span<const double>(st.restricted.data() + oa, E));
                    const double tb =
                        normalize(pb, std::span<const double>(st.restricted.data() + ob, E));
                    if (ta > 0 && tb > 0) v = jsd_bits(pa, pb);
                }
                if (a < b) x.push_back(v);
                row.push_back(num(v));
            }
            m.push_back(std::move(row));
        }
        double corr_r = kNaN;
        if (st.has_restricted &&
            std::all_of(x.begin(), x.end(), [](double v) { return std::isfinite(v); }))
            corr_r = pearson(x, c.spec.overlap);
        layers.push_back({{"layer", st.layers[static_cast<size_t>(r)]},
                          {"restricted_bits", std::move(m)},
                          {"correlation_jsd", c.ci(c.layout.correlation(r))},
                          {"correlation_restricted", num(corr_r)}});
    }
    return {{"definition", "script_vs_language"},
            {"overlap_definition", "vocab_overlap"},
            {"overlap_source", c.overlap_source},
            {"vocab_overlap", std::move(overlap)},
            {"shared_token_ids", std::move(shared)},
            {"restricted_definition", "restricted_jsd"},
            {"restricted_available", st.has_restricted},
            {"restricted_note", st.restricted_note},
            {"restricted_estimator", estimator_name(st.restricted_estimator)},
            {"units", "bits"},
            {"correlation_definition", "jsd_overlap_correlation"},
            {"correlation_mean_jsd", c.ci(c.layout.correlation_mean())},
            {"layers", std::move(layers)}};
}

json coactivation_json(const ReportContext& c) {
    const TraceStats& st = c.st;
    json out = {{"definition", "coactivation"},
                {"lift_definition", "coactivation_lift"},
                {"available", st.has_coactivation},
                {"units", "share of unordered top-k pairs"}};
    if (!st.has_coactivation) {
        out["reason"] = st.from_counts ? kNoCoactivationReason : "disabled (coactivation = false)";
        return out;
    }
    const int E = st.E, K = st.K, R = st.R;
    const size_t RE = static_cast<size_t>(R) * E;
    const std::vector<double>& cnt = st.lang_sum(Estimator::kCounts);
    json langs = json::array();
    for (int a = 0; a < st.nL; ++a) {
        json layers = json::array();
        const double N = static_cast<double>(st.lang_tokens[static_cast<size_t>(a)]);
        const double pairs_total = N * K * (K - 1) / 2.0;
        for (int r = 0; r < R; ++r) {
            const uint32_t* co = st.coact.data() + (static_cast<size_t>(a) * R + r) * E * E;
            const double* ce =
                cnt.data() + static_cast<size_t>(a) * RE + static_cast<size_t>(r) * E;
            auto freq = [&](int i, int j) {
                const uint32_t v = i < j ? co[i * E + j] : co[j * E + i];
                return pairs_total > 0 ? v / pairs_total : kNaN;
            };
            auto lift = [&](int i, int j) {
                const uint32_t v = i < j ? co[i * E + j] : co[j * E + i];
                const double d = ce[i] * ce[j];
                return d > 0 ? v * N / d : kNaN;
            };
            // Top pairs by count (ties: lower expert ids first).
            std::vector<std::pair<int, int>> all;
            for (int i = 0; i < E; ++i)
                for (int j = i + 1; j < E; ++j)
                    if (co[i * E + j] > 0) all.emplace_back(i, j);
            const size_t top =
                std::min<size_t>(all.size(), static_cast<size_t>(c.o.coactivation_top));
            std::partial_sort(all.begin(), all.begin() + static_cast<ptrdiff_t>(top), all.end(),
                              [&](const auto& x, const auto& y) {
                                  const uint32_t vx = co[x.first * E + x.second];
                                  const uint32_t vy = co[y.first * E + y.second];
                                  return vx != vy ? vx > vy : x < y;
                              });
            json tp = json::array();
            for (size_t i = 0; i < top; ++i) {
                const auto [e1, e2] = all[i];
                tp.push_back({{"experts", {e1, e2}},
                              {"count", co[e1 * E + e2]},
                              {"frequency", num(freq(e1, e2))},
                              {"lift", num(lift(e1, e2))}});
            }
            json layer = {{"layer", st.layers[static_cast<size_t>(r)]},
                          {"tokens", static_cast<int64_t>(N)},
                          {"top_pairs", std::move(tp)}};
            if (c.o.coactivation_matrices) {
                json fm = json::array(), lm = json::array();
                for (int i = 0; i < E; ++i) {
                    json fr = json::array(), lr = json::array();
                    for (int j = 0; j < E; ++j) {
                        fr.push_back(i == j ? json(0.0) : num(freq(i, j)));
                        lr.push_back(i == j ? json(nullptr) : num(lift(i, j)));
                    }
                    fm.push_back(std::move(fr));
                    lm.push_back(std::move(lr));
                }
                layer["frequency"] = std::move(fm);
                layer["lift"] = std::move(lm);
            }
            layers.push_back(std::move(layer));
        }
        langs.push_back({{"language", c.code(a)}, {"layers", std::move(layers)}});
    }
    out["languages"] = std::move(langs);
    return out;
}

json vocabulary_json(const ReportContext& c) {
    const TraceStats& st = c.st;
    const int E = st.E, K = st.K, R = st.R, nL = st.nL;
    const size_t RE = static_cast<size_t>(R) * E;
    const std::vector<double>& cnt = st.lang_sum(Estimator::kCounts);
    json layers = json::array();
    for (int r = 0; r < R; ++r) {
        json experts = json::array();
        for (int e = 0; e < E; ++e) {
            json top = json::array();
            if (!st.top_tokens.empty())
                for (const TopToken& t : st.top_tokens[static_cast<size_t>(r) * E + e])
                    top.push_back({{"token", t.token},
                                   {"count", t.count},
                                   {"share_of_token", static_cast<double>(t.count) /
                                                          static_cast<double>(t.occurrences)}});
            std::vector<double> rate(static_cast<size_t>(nL)), share(static_cast<size_t>(nL));
            for (int a = 0; a < nL; ++a)
                rate[static_cast<size_t>(a)] =
                    cnt[static_cast<size_t>(a) * RE + static_cast<size_t>(r) * E + e] /
                    c.tokens[static_cast<size_t>(a)];
            normalize(share, rate);
            experts.push_back({{"expert", e},
                               {"top_tokens", std::move(top)},
                               {"language_rate", num_array(rate)},
                               {"language_share", num_array(share)}});
        }
        layers.push_back(
            {{"layer", st.layers[static_cast<size_t>(r)]}, {"experts", std::move(experts)}});
    }
    return {{"definition", "vocabulary_specialization"},
            {"rate_definition", "language_rate"},
            {"baseline", static_cast<double>(K) / E},
            {"top_tokens", c.o.top_tokens},
            {"layers", std::move(layers)}};
}

}  // namespace polymoe::analysis
