// The JSON section of one trace (analysis.h, trace_report): point estimates from all units, then
// bootstrap replicates and permutations of the per-document sums (compute_metrics on each, in
// parallel, each replicate written to its own slot so results are independent of threads), the
// split-half floor, paired JSD and the reuse random-set baseline; the side tables (restricted
// JSD, co-activation, vocabulary) are in report_tables.cpp. Definitions: docs/analysis.md.
#include <algorithm>
#include <cmath>
#include <limits>

#include "analysis/divergence.h"
#include "analysis/paired.h"
#include "analysis/report_context.h"
#include "core/check.h"
#include "core/error.h"
#include "core/parallel.h"

namespace polymoe::analysis {

namespace {

using nlohmann::json;
constexpr std::string_view kComponent = "analysis";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Reuse rows, overlap pairs and the layer axis for compute_metrics.
MetricSpec make_spec(const TraceStats& st,
                     const AnalysisOptions& o,
                     std::vector<std::string>* skipped,
                     std::vector<double>* overlap_full,
                     std::string* overlap_source) {
    MetricSpec s;
    s.E = st.E;
    s.K = st.K;
    s.R = st.R;
    s.nL = st.nL;
    for (int l : st.layers)
        s.layer_x.push_back(l);
    s.specific_threshold = o.specific_threshold;
    s.specific_ratio = o.specific_ratio;
    s.shared_factor = o.shared_factor;
    s.reuse_m = o.reuse_top_m > 0 ? o.reuse_top_m : st.K;
    if (s.reuse_m > st.E)
        fail(kComponent, "reuse_top_m: expected at most E = {}, found {}", st.E, s.reuse_m);

    // High-resource: the `related` of some language, or stage "1".
    std::vector<bool> high(static_cast<size_t>(st.nL), false);
    for (int a = 0; a < st.nL; ++a) {
        const auto& li = st.languages[static_cast<size_t>(a)];
        if (li.stage == "1") high[static_cast<size_t>(a)] = true;
        const int b = data::find_language(st.languages, li.related);
        if (b >= 0) high[static_cast<size_t>(b)] = true;
    }
    for (int a = 0; a < st.nL; ++a) {
        const auto& li = st.languages[static_cast<size_t>(a)];
        if (li.related.empty()) continue;
        const int b = data::find_language(st.languages, li.related);
        if (b < 0 || b == a) {
            skipped->push_back(fmt::format("{}: related language '{}' {}", li.code, li.related,
                                           b < 0 ? "has no tokens in this trace" : "is itself"));
            continue;
        }
        ReuseRow row;
        row.lang = a;
        row.targets = {a, b};
        for (int c = 0; c < st.nL; ++c)
            if (high[static_cast<size_t>(c)] && c != a && c != b) row.targets.push_back(c);
        s.reuse.push_back(std::move(row));
    }

    // Vocabulary overlap: given (by language code) or the trace's own share of a's distinct ids
    // also in b. The correlation uses the symmetrised (O[a][b] + O[b][a]) / 2 per pair.
    const int nL = st.nL;
    overlap_full->assign(static_cast<size_t>(nL) * nL, kNaN);
    if (!o.vocab_overlap.languages.empty()) {
        const auto& vo = o.vocab_overlap;
        const size_t n = vo.languages.size();
        if (vo.values.size() != n * n)
            fail(kComponent, "vocab_overlap: expected a {}x{} matrix ({} values), found {} values",
                 n, n, n * n, vo.values.size());
        std::vector<size_t> idx(static_cast<size_t>(nL));
        for (int a = 0; a < nL; ++a) {
            const auto it = std::find(vo.languages.begin(), vo.languages.end(),
                                      st.languages[static_cast<size_t>(a)].code);
            if (it == vo.languages.end())
                fail(kComponent, "vocab_overlap: expected a row for language {}, found none",
                     st.languages[static_cast<size_t>(a)].code);
            idx[static_cast<size_t>(a)] = static_cast<size_t>(it - vo.languages.begin());
        }
        for (int a = 0; a < nL; ++a)
            for (int b = 0; b < nL; ++b)
                (*overlap_full)[static_cast<size_t>(a) * nL + b] =
                    vo.values[idx[static_cast<size_t>(a)] * n + idx[static_cast<size_t>(b)]];
        *overlap_source = "given";
    } else {
        for (int a = 0; a < nL; ++a)
            for (int b = 0; b < nL; ++b)
                (*overlap_full)[static_cast<size_t>(a) * nL + b] =
                    static_cast<double>(st.shared_vocab[static_cast<size_t>(a) * nL + b]) /
                    static_cast<double>(st.shared_vocab[static_cast<size_t>(a) * nL + a]);
        *overlap_source = "trace";
    }
    for (int a = 0; a < nL; ++a)
        for (int b = a + 1; b < nL; ++b)
            s.overlap.push_back(0.5 * ((*overlap_full)[static_cast<size_t>(a) * nL + b] +
                                       (*overlap_full)[static_cast<size_t>(b) * nL + a]));
    return s;
}

// Bootstrap (kAll) or permutation (kNull) replicates, in parallel, one slot each.
void run_replicates(ReportContext& c, bool permutation) {
    const int n = permutation ? c.o.permutations : c.o.bootstrap;
    auto& out = permutation ? c.perm : c.boot;
    out.assign(static_cast<size_t>(n), {});
    const size_t RE = static_cast<size_t>(c.st.R) * c.st.E;
    parallel_for(n, 1, [&](int64_t b0, int64_t b1, int) {
        MetricWorkspace ws;
        std::vector<double> mass(RE * c.st.nL), tok(static_cast<size_t>(c.st.nL));
        std::vector<int32_t> mult;
        std::vector<int> label;
        for (int64_t b = b0; b < b1; ++b) {
            if (permutation) {
                permuted_labels(&label, c.st, c.o.seed, b);
                aggregate_units(mass, tok, c.st, {}, label);
            } else {
                bootstrap_multiplicities(&mult, c.st, c.o.seed, "bootstrap", b);
                aggregate_units(mass, tok, c.st, mult, {});
            }
            compute_metrics(&out[static_cast<size_t>(b)], mass, tok, c.spec, c.layout,
                            permutation ? MetricSet::kNull : MetricSet::kAll, &ws);
        }
    });
}

// Split-half floor: mean over repeats of JSD(half A, half B) of one language's documents.
std::vector<double> split_half(const ReportContext& c) {
    const TraceStats& st = c.st;
    const int R = st.R, E = st.E, nL = st.nL, reps = c.o.split_half_repeats;
    const size_t RE = static_cast<size_t>(R) * E;
    std::vector<double> vals(static_cast<size_t>(nL) * reps * R, kNaN);
    parallel_for(int64_t{nL} * reps, 1, [&](int64_t t0, int64_t t1, int) {
        std::vector<int8_t> half(static_cast<size_t>(st.num_docs()), 0);
        std::vector<double> sa(RE), sb(RE), pa(static_cast<size_t>(E)), pb(static_cast<size_t>(E));
        for (int64_t t = t0; t < t1; ++t) {
            const int a = static_cast<int>(t / reps);
            const int rep = static_cast<int>(t % reps);
            std::vector<int64_t> docs = st.lang_docs[static_cast<size_t>(a)];
            if (docs.size() < 2) continue;
            const int64_t k = static_cast<int64_t>(docs.size()) / 2;
            random_subset(docs, k,
                          stream_key(c.o.seed, "split_half",
                                     static_cast<uint64_t>(rep) * nL + static_cast<uint64_t>(a)));
            for (size_t i = 0; i < docs.size(); ++i)
                half[static_cast<size_t>(docs[i])] =
                    static_cast<int8_t>(i < static_cast<size_t>(k));
            std::fill(sa.begin(), sa.end(), 0.0);
            std::fill(sb.begin(), sb.end(), 0.0);
            for (int64_t u : st.lang_units[static_cast<size_t>(a)]) {
                const double* src = st.row(u);
                double* dst = half[static_cast<size_t>(st.units[static_cast<size_t>(u)].doc)]
                                  ? sa.data()
                                  : sb.data();
                for (size_t j = 0; j < RE; ++j)
                    dst[j] += src[j];
            }
            for (int r = 0; r < R; ++r) {
                normalize(pa, std::span<const double>(sa.data() + static_cast<size_t>(r) * E, E));
                normalize(pb, std::span<const double>(sb.data() + static_cast<size_t>(r) * E, E));
                vals[static_cast<size_t>(t) * R + r] = jsd_bits(pa, pb);
            }
        }
    });
    std::vector<double> mean(static_cast<size_t>(nL) * R, kNaN);
    for (int a = 0; a < nL; ++a)
        for (int r = 0; r < R; ++r) {
            if (st.lang_docs[static_cast<size_t>(a)].size() < 2 || reps == 0) continue;
            double s = 0;
            for (int rep = 0; rep < reps; ++rep)
                s += vals[(static_cast<size_t>(a) * reps + rep) * R + r];
            mean[static_cast<size_t>(a) * R + r] = s / reps;
        }
    return mean;
}

json languages_json(const TraceStats& st) {
    json langs = json::array();
    std::vector<int64_t> units(static_cast<size_t>(st.nL), 0);
    for (const Unit& u : st.units)
        ++units[static_cast<size_t>(u.lang)];
    for (int a = 0; a < st.nL; ++a) {
        const auto& li = st.languages[static_cast<size_t>(a)];
        langs.push_back(
            {{"code", li.code},
             {"name", li.name},
             {"script", li.script},
             {"family", li.family},
             {"stage", li.stage},
             {"related", li.related},
             {"documents", st.lang_docs[static_cast<size_t>(a)].size()},
             {"units", units[static_cast<size_t>(a)]},
             {"tokens", st.lang_tokens[static_cast<size_t>(a)]},
             {"distinct_token_ids", st.shared_vocab[static_cast<size_t>(a) * st.nL + a]}});
        // A count table has no documents or token ids; its token count is an estimate.
        if (st.from_counts) {
            langs.back()["documents"] = nullptr;
            langs.back()["units"] = nullptr;
            langs.back()["distinct_token_ids"] = nullptr;
            langs.back()["tokens"] = st.token_estimate[static_cast<size_t>(a)];
        }
    }
    return langs;
}

// Distributions, entropies and JSD matrices of all three estimators (point estimates).
struct EstimatorTables {
    std::vector<double> p[kNumEstimators];  // [nL][R][E]
};

EstimatorTables estimator_tables(const TraceStats& st) {
    EstimatorTables t;
    for (Estimator est : kAllEstimators) {
        auto& p = t.p[static_cast<int>(est)];
        const std::vector<double>& mass = st.lang_sum(est);
        p.resize(mass.size());
        for (size_t o = 0; o < mass.size(); o += static_cast<size_t>(st.E)) {
            std::span<double> row(p.data() + o, static_cast<size_t>(st.E));
            // No mass at all (a trace recorded without weights): undefined, reported as null.
            if (!(normalize(row, std::span<const double>(mass.data() + o, row.size())) > 0))
                std::fill(row.begin(), row.end(), kNaN);
        }
    }
    return t;
}

std::span<const double> dist_of(const std::vector<double>& p, const TraceStats& st, int a, int r) {
    return {p.data() + (static_cast<size_t>(a) * st.R + r) * st.E, static_cast<size_t>(st.E)};
}

json distributions_json(const ReportContext& c, const EstimatorTables& t) {
    const TraceStats& st = c.st;
    json est = json::object();
    for (Estimator e : kAllEstimators) {
        json langs = json::array();
        for (int a = 0; a < st.nL; ++a) {
            json layers = json::array();
            for (int r = 0; r < st.R; ++r)
                layers.push_back(num_array(dist_of(t.p[static_cast<int>(e)], st, a, r)));
            langs.push_back(std::move(layers));
        }
        est[estimator_name(e)] = std::move(langs);
    }
    return {{"definition", "expert_distribution"},
            {"units", "probability"},
            {"index", "[language][layer][expert]"},
            {"estimators", std::move(est)}};
}

json entropy_json(const ReportContext& c, const EstimatorTables& t) {
    const TraceStats& st = c.st;
    json values = json::array();
    for (int a = 0; a < st.nL; ++a) {
        json row = json::array();
        for (int r = 0; r < st.R; ++r)
            row.push_back(c.ci(c.layout.entropy(a, r)));
        values.push_back(std::move(row));
    }
    json by = json::object();
    for (Estimator e : kAllEstimators) {
        json langs = json::array();
        for (int a = 0; a < st.nL; ++a) {
            json row = json::array();
            for (int r = 0; r < st.R; ++r)
                row.push_back(num(entropy_bits(dist_of(t.p[static_cast<int>(e)], st, a, r))));
            langs.push_back(std::move(row));
        }
        by[estimator_name(e)] = std::move(langs);
    }
    json mean = json::array();
    for (int r = 0; r < st.R; ++r)
        mean.push_back(c.ci(c.layout.mean_entropy(r)));
    return {{"definition", "routing_entropy"},
            {"units", "bits"},
            {"estimator", estimator_name(c.o.estimator)},
            {"max", std::log2(static_cast<double>(st.E))},
            {"index", "[language][layer]"},
            {"values", std::move(values)},
            {"mean_over_languages", std::move(mean)},
            {"by_estimator", std::move(by)}};
}

json jsd_json(const ReportContext& c, const EstimatorTables& t, const std::vector<double>& floor) {
    const TraceStats& st = c.st;
    const int nL = st.nL;
    json layers = json::array();
    const json zero = {{"value", 0.0}, {"lo", 0.0}, {"hi", 0.0}, {"n_boot", c.boot.size()}};
    for (int r = 0; r < st.R; ++r) {
        json bits = json::array(), nats = json::array(), norm = json::array(), nul = json::array();
        for (int a = 0; a < nL; ++a) {
            json rb = json::array(), rn = json::array(), rz = json::array(), ru = json::array();
            for (int b = 0; b < nL; ++b) {
                if (a == b) {
                    rb.push_back(zero);
                    rn.push_back(zero);
                    rz.push_back(zero);
                    ru.push_back(nullptr);
                    continue;
                }
                const int p = c.layout.pair(a, b);
                rb.push_back(c.ci(c.layout.jsd(p, r)));
                rn.push_back(c.ci_scaled(c.layout.jsd(p, r), kLn2));
                rz.push_back(c.ci(c.layout.njsd(p, r)));
                ru.push_back(c.null(c.layout.jsd(p, r)));
            }
            bits.push_back(std::move(rb));
            nats.push_back(std::move(rn));
            norm.push_back(std::move(rz));
            nul.push_back(std::move(ru));
        }
        json by = json::object();
        for (Estimator e : kAllEstimators) {
            json m = json::array();
            for (int a = 0; a < nL; ++a) {
                json row = json::array();
                for (int b = 0; b < nL; ++b)
                    row.push_back(num(jsd_bits(dist_of(t.p[static_cast<int>(e)], st, a, r),
                                               dist_of(t.p[static_cast<int>(e)], st, b, r))));
                m.push_back(std::move(row));
            }
            by[estimator_name(e)] = std::move(m);
        }
        // The floor of the pair mean: the mean of the languages' split-half floors (languages
        // with fewer than two documents have none and are left out).
        json fl = json::array();
        double floor_sum = 0;
        int floor_n = 0;
        for (int a = 0; a < nL; ++a) {
            const double f = floor[static_cast<size_t>(a) * st.R + r];
            fl.push_back(num(f));
            if (std::isfinite(f)) {
                floor_sum += f;
                ++floor_n;
            }
        }
        layers.push_back({{"layer", st.layers[static_cast<size_t>(r)]},
                          {"mean_bits", c.ci(c.layout.mean_jsd(r))},
                          {"mean_permutation", c.null(c.layout.mean_jsd(r))},
                          {"mean_split_half_bits", num(floor_n > 0 ? floor_sum / floor_n : kNaN)},
                          {"bits", std::move(bits)},
                          {"nats", std::move(nats)},
                          {"normalized", std::move(norm)},
                          {"permutation", std::move(nul)},
                          {"split_half_bits", std::move(fl)},
                          {"by_estimator_bits", std::move(by)}});
    }
    return {{"definition", "jsd"},
            {"estimator", estimator_name(c.o.estimator)},
            {"units", {{"bits", "bits"}, {"nats", "nats"}, {"normalized", "fraction of bound"}}},
            {"index", "layers[r].bits[language a][language b]"},
            {"permutation_definition", "permutation_null"},
            {"split_half_definition", "split_half_jsd"},
            {"split_half_repeats", c.o.split_half_repeats},
            {"layers", std::move(layers)}};
}

json paired_json(const ReportContext& c) {
    const TraceStats& st = c.st;
    json pairs = json::array();
    if (c.o.paired) {
        for (const PairedJsd& p : paired_jsd(st, c.o.bootstrap, c.o.ci_level, c.o.seed)) {
            json layers = json::array();
            for (int r = 0; r < st.R; ++r) {
                Interval iv{p.lo[static_cast<size_t>(r)], p.hi[static_cast<size_t>(r)], p.n_boot};
                if (c.o.bootstrap == 0) iv.lo = iv.hi = kNaN;
                layers.push_back({{"layer", st.layers[static_cast<size_t>(r)]},
                                  {"mean", ci_json(p.mean[static_cast<size_t>(r)], iv)},
                                  {"aggregate", num(p.aggregate[static_cast<size_t>(r)])}});
            }
            pairs.push_back({{"a", c.code(p.a)},
                             {"b", c.code(p.b)},
                             {"passages", p.passages},
                             {"layers", std::move(layers)}});
        }
    }
    json out = {{"definition", "paired_jsd"},
                {"units", "bits"},
                {"estimator", estimator_name(c.o.estimator)},
                {"enabled", c.o.paired},
                {"pairs", std::move(pairs)}};
    if (st.from_counts) {
        out["available"] = false;
        out["reason"] = kNoPairedReason;
    }
    return out;
}

json specialization_json(const ReportContext& c) {
    const TraceStats& st = c.st;
    json layers = json::array();
    for (int r = 0; r < st.R; ++r)
        layers.push_back({{"layer", st.layers[static_cast<size_t>(r)]},
                          {"nmi", c.ci(c.layout.nmi(r))},
                          {"nmi_balanced", c.ci(c.layout.nmi_balanced(r))},
                          {"permutation", c.null(c.layout.nmi(r))},
                          {"permutation_balanced", c.null(c.layout.nmi_balanced(r))}});
    return {{"definition", "nmi"},
            {"balanced_definition", "nmi_balanced"},
            {"units", "fraction of H(L)"},
            {"estimator", estimator_name(c.o.estimator)},
            {"layers", std::move(layers)},
            {"trend",
             {{"definition", "nmi_trend"},
              {"x", "model layer number"},
              {"slope", c.ci(c.layout.trend(0))},
              {"last_minus_first", c.ci(c.layout.trend(1))},
              {"slope_balanced", c.ci(c.layout.trend(2))},
              {"last_minus_first_balanced", c.ci(c.layout.trend(3))}}}};
}

json specific_json(const ReportContext& c) {
    const TraceStats& st = c.st;
    const int E = st.E, nL = st.nL;
    const size_t RE = static_cast<size_t>(st.R) * E;
    json layers = json::array();
    for (int r = 0; r < st.R; ++r) {
        json specific = json::array(), shared = json::array();
        std::vector<int64_t> per_lang(static_cast<size_t>(nL), 0);
        std::vector<double> layer_total(static_cast<size_t>(nL), 0.0);
        for (int a = 0; a < nL; ++a)
            for (int e = 0; e < E; ++e)
                layer_total[static_cast<size_t>(a)] +=
                    c.mass[static_cast<size_t>(a) * RE + static_cast<size_t>(r) * E + e];
        for (int e = 0; e < E; ++e) {
            const size_t i = static_cast<size_t>(r) * E + e;
            // Per-token mass of each language on e (its share across languages is what makes an
            // expert specific) and the smallest per-language probability (what makes it shared).
            double total = 0, pmin = 1;
            for (int a = 0; a < nL; ++a) {
                const double v = c.mass[static_cast<size_t>(a) * RE + i];
                total += v / c.tokens[static_cast<size_t>(a)];
                pmin = std::min(pmin, v / layer_total[static_cast<size_t>(a)]);
            }
            const int x = c.point.specific[i];
            if (x >= 0) {
                int64_t again = 0;
                for (const auto& b : c.boot)
                    again += b.specific[i] == x;
                ++per_lang[static_cast<size_t>(x)];
                specific.push_back(
                    {{"expert", e},
                     {"language", c.code(x)},
                     {"share", num(c.mass[static_cast<size_t>(x) * RE + i] /
                                   c.tokens[static_cast<size_t>(x)] / total)},
                     {"stability", c.boot.empty() ? json(nullptr)
                                                  : json(static_cast<double>(again) /
                                                         static_cast<double>(c.boot.size()))}});
            }
            if (c.point.shared[i]) {
                int64_t again = 0;
                for (const auto& b : c.boot)
                    again += b.shared[i];
                shared.push_back(
                    {{"expert", e},
                     {"min_probability", num(pmin)},
                     {"stability", c.boot.empty() ? json(nullptr)
                                                  : json(static_cast<double>(again) /
                                                         static_cast<double>(c.boot.size()))}});
            }
        }
        json counts = json::object();
        for (int a = 0; a < nL; ++a)
            counts[c.code(a)] = per_lang[static_cast<size_t>(a)];
        layers.push_back({{"layer", st.layers[static_cast<size_t>(r)]},
                          {"num_specific", c.ci(c.layout.num_specific(r))},
                          {"num_shared", c.ci(c.layout.num_shared(r))},
                          {"specific_per_language", std::move(counts)},
                          {"specific", std::move(specific)},
                          {"shared", std::move(shared)}});
    }
    return {{"definition", "specific_experts"},
            {"shared_definition", "shared_experts"},
            {"estimator", estimator_name(c.o.estimator)},
            {"threshold", c.o.specific_threshold},
            {"ratio", c.o.specific_ratio},
            {"shared_factor", c.o.shared_factor},
            {"shared_min_probability", c.o.shared_factor / E},
            {"layers", std::move(layers)}};
}

json reuse_json(const ReportContext& c) {
    const TraceStats& st = c.st;
    const int E = st.E, R = st.R, m = c.spec.reuse_m;
    const size_t RE = static_cast<size_t>(R) * E;
    // Random expert sets of size m (the same sets for every language and layer).
    const int n_rand = c.reuse_random;  // 0: no random baseline (reported as null)
    std::vector<std::vector<int64_t>> sets(static_cast<size_t>(n_rand));
    for (int i = 0; i < n_rand; ++i) {
        std::vector<int64_t> v(static_cast<size_t>(E));
        for (int e = 0; e < E; ++e)
            v[static_cast<size_t>(e)] = e;
        random_subset(v, m, stream_key(c.o.seed, "reuse_random", static_cast<uint64_t>(i)));
        v.resize(static_cast<size_t>(m));
        sets[static_cast<size_t>(i)] = std::move(v);
    }
    json high = json::array();
    {
        std::vector<bool> seen(static_cast<size_t>(st.nL), false);
        for (const ReuseRow& row : c.spec.reuse)
            for (size_t t = 1; t < row.targets.size(); ++t)
                seen[static_cast<size_t>(row.targets[t])] = true;
        for (int a = 0; a < st.nL; ++a)
            if (seen[static_cast<size_t>(a)]) high.push_back(c.code(a));
    }
    json langs = json::array();
    std::vector<double> pa(static_cast<size_t>(E)), rnd;
    for (size_t j = 0; j < c.spec.reuse.size(); ++j) {
        const ReuseRow& row = c.spec.reuse[j];
        const int ji = static_cast<int>(j);
        json layers = json::array();
        for (int r = 0; r < R; ++r) {
            normalize(pa,
                      std::span<const double>(c.mass.data() + static_cast<size_t>(row.lang) * RE +
                                                  static_cast<size_t>(r) * E,
                                              static_cast<size_t>(E)));
            rnd.clear();
            for (const auto& set : sets) {
                double s = 0;
                for (int64_t e : set)
                    s += pa[static_cast<size_t>(e)];
                rnd.push_back(s);
            }
            const double related = c.point.s[static_cast<size_t>(c.layout.reuse(ji, 1, r))];
            const NullSummary ns = null_summary(rnd, related);
            json unrelated = json::array();
            for (size_t t = 2; t < row.targets.size(); ++t)
                unrelated.push_back({{"language", c.code(row.targets[t])},
                                     {"share", c.ci(c.layout.reuse(ji, static_cast<int>(t), r))}});
            layers.push_back({{"layer", st.layers[static_cast<size_t>(r)]},
                              {"self", c.ci(c.layout.reuse(ji, 0, r))},
                              {"related", c.ci(c.layout.reuse(ji, 1, r))},
                              {"unrelated", std::move(unrelated)},
                              {"margin", c.ci(c.layout.reuse_margin(ji, r))},
                              {"random",
                               {{"mean", num(ns.mean)},
                                {"p95", num(ns.p95)},
                                {"p_value_related", num(ns.p_value)},
                                {"n", ns.n},
                                {"expected", static_cast<double>(m) / E}}}});
        }
        langs.push_back({{"language", c.code(row.lang)},
                         {"related", c.code(row.targets[1])},
                         {"layers", std::move(layers)}});
    }
    return {{"definition", "expert_reuse"},
            {"units", "share of routing mass"},
            {"estimator", estimator_name(c.o.estimator)},
            {"m", m},
            {"high_resource", std::move(high)},
            {"skipped", c.skipped_reuse},
            {"languages", std::move(langs)}};
}

// Which statistics this section could compute, and why not where it could not.
json availability_json(const TraceStats& st, const AnalysisOptions& o) {
    auto item = [](bool ok, const std::string& why) {
        return json{{"available", ok}, {"reason", ok ? json(nullptr) : json(why)}};
    };
    const bool cnt = st.from_counts;
    return {
        {"bootstrap_ci", item(!cnt && o.bootstrap > 0, cnt ? kNoBootstrapReason : "bootstrap = 0")},
        {"permutation_null",
         item(!cnt && o.permutations > 0, cnt ? kNoPermutationReason : "permutations = 0")},
        {"split_half_jsd", item(!cnt && o.split_half_repeats > 0,
                                cnt ? kNoSplitHalfReason : "split_half_repeats = 0")},
        {"paired_jsd", item(!cnt && o.paired, cnt ? kNoPairedReason : "paired = false")},
        {"coactivation",
         item(st.has_coactivation, cnt ? kNoCoactivationReason : "coactivation = false")},
        {"restricted_jsd", item(st.has_restricted, st.restricted_note)},
        {"vocab_overlap", item(!cnt || !o.vocab_overlap.languages.empty(),
                               std::string(kNoTokenIdsReason) + " (give the matrix with --stats)")},
        {"top_tokens", item(!cnt && o.top_tokens > 0, cnt ? kNoTokenIdsReason : "top_tokens = 0")},
        {"reuse_random", item(o.permutations > 0, "permutations = 0")},
    };
}

}  // namespace

json trace_report(const TraceStats& st, const AnalysisOptions& options) {
    // A count table has one pseudo-unit per language: resampling, permuting or splitting units
    // would be meaningless, so those are switched off here (and marked unavailable) whatever
    // the options say; the reuse baseline draws random expert sets and still runs.
    AnalysisOptions eff = options;
    if (st.from_counts) {
        eff.bootstrap = eff.permutations = eff.split_half_repeats = 0;
        eff.paired = eff.coactivation = eff.restricted = false;
        eff.top_tokens = 0;
    }
    const AnalysisOptions& o = eff;
    std::vector<std::string> skipped;
    std::vector<double> overlap_full;
    std::string overlap_source;
    MetricSpec spec = make_spec(st, o, &skipped, &overlap_full, &overlap_source);
    ReportContext c(st, o, std::move(spec));
    c.reuse_random = options.permutations;
    c.skipped_reuse = std::move(skipped);
    c.overlap_full = std::move(overlap_full);
    c.overlap_source = std::move(overlap_source);

    const size_t RE = static_cast<size_t>(st.R) * st.E;
    c.mass.resize(RE * st.nL);
    c.tokens.resize(static_cast<size_t>(st.nL));
    POLYMOE_CHECK(st.estimator == o.estimator,
                  "trace_report: statistics of estimator {}, options {}",
                  estimator_name(st.estimator), estimator_name(o.estimator));
    aggregate_units(c.mass, c.tokens, st, {}, {});
    if (st.from_counts) c.tokens = st.token_estimate;
    for (int a = 0; a < st.nL; ++a)
        for (int r = 0; r < st.R; ++r) {
            double total = 0;
            for (int e = 0; e < st.E; ++e)
                total += c.mass[static_cast<size_t>(a) * RE + static_cast<size_t>(r) * st.E + e];
            if (!(total > 0))
                fail(kComponent,
                     "trace '{}': estimator {}: language {} has no routing-weight mass at layer "
                     "{} (a trace recorded without weights?); use the counts estimator",
                     st.label, estimator_name(o.estimator), c.code(a),
                     st.layers[static_cast<size_t>(r)]);
        }
    MetricWorkspace ws;
    compute_metrics(&c.point, c.mass, c.tokens, c.spec, c.layout, MetricSet::kAll, &ws);
    run_replicates(c, false);
    run_replicates(c, true);
    const std::vector<double> floor = split_half(c);
    const EstimatorTables tables = estimator_tables(st);

    json j;
    j["label"] = st.label;
    j["model"] = st.model;
    j["data"] = st.data;
    j["num_experts"] = st.E;
    j["top_k"] = st.K;
    j["layers"] = st.layers;
    j["estimator"] = estimator_name(o.estimator);
    j["languages"] = languages_json(st);
    j["absent_languages"] = st.absent_languages;
    j["sample"] = {{"documents", st.num_docs()},
                   {"units", st.num_units()},
                   {"tokens", st.tokens},
                   {"records", st.tokens * st.R},
                   {"slots", st.tokens * st.R * st.K},
                   {"distinct_token_ids", st.vocab_size},
                   {"n_boot", o.bootstrap},
                   {"n_perm", o.permutations}};
    if (st.from_counts) {
        double tokens = 0;
        for (double v : st.token_estimate)
            tokens += v;
        for (const char* k : {"documents", "units", "distinct_token_ids"})
            j["sample"][k] = nullptr;
        j["sample"]["tokens"] = tokens;
        j["sample"]["records"] = tokens * st.R;
        j["sample"]["slots"] = tokens * st.R * st.K;
    }
    j["source"] = {{"kind", "trace"}};
    j["availability"] = availability_json(st, options);
    j["distributions"] = distributions_json(c, tables);
    j["entropy"] = entropy_json(c, tables);
    j["jsd"] = jsd_json(c, tables, floor);
    j["paired_jsd"] = paired_json(c);
    j["specialization"] = specialization_json(c);
    j["specific_experts"] = specific_json(c);
    j["reuse"] = reuse_json(c);
    j["script"] = script_json(c);
    j["coactivation"] = coactivation_json(c);
    j["vocabulary"] = vocabulary_json(c);
    return j;
}

}  // namespace polymoe::analysis
