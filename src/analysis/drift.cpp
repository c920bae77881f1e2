// Drift between two traces of identical tokens (see drift.h). The two traces may be chunked
// differently, so tokens are walked with one cursor per trace. Top-k overlap per token uses a
// stamp array of size E (O(K) per token and layer). Work is split over layers; each (unit, layer)
// overlap sum is written by one thread in trace order.
#include "analysis/drift.h"

#include <algorithm>
#include <unordered_map>

#include "analysis/divergence.h"
#include "analysis/json_util.h"
#include "analysis/resample.h"
#include "core/check.h"
#include "core/error.h"
#include "core/parallel.h"

namespace polymoe::analysis {

namespace {

constexpr std::string_view kComponent = "analysis";

// Walks the tokens of a trace across chunks.
struct Cursor {
    const trace::TraceView* v;
    size_t c = 0;
    int64_t i = 0;
    explicit Cursor(const trace::TraceView& view) : v(&view) { settle(); }
    void settle() {
        while (c < v->chunks.size() && i >= v->chunks[c].n) {
            ++c;
            i = 0;
        }
    }
    bool done() const { return c >= v->chunks.size(); }
    const trace::TraceChunk& chunk() const { return v->chunks[c]; }
    void next() {
        ++i;
        settle();
    }
};

}  // namespace

void check_same_tokens(const trace::TraceView& a, const trace::TraceView& b) {
    const auto& ha = a.header;
    const auto& hb = b.header;
    const std::string pair = fmt::format("drift '{}' -> '{}'", ha.label, hb.label);
    if (ha.num_experts != hb.num_experts || ha.top_k != hb.top_k)
        fail(kComponent, "{}: expected the same E and K, found E {} K {} vs E {} K {}", pair,
             ha.num_experts, ha.top_k, hb.num_experts, hb.top_k);
    if (ha.layers != hb.layers)
        fail(kComponent, "{}: expected the same recorded layers, found [{}] vs [{}]", pair,
             fmt::join(ha.layers, ", "), fmt::join(hb.layers, ", "));
    const int64_t na = a.num_tokens(), nb = b.num_tokens();
    if (na != nb)
        fail(kComponent,
             "{}: expected traces of identical tokens, found {} vs {} tokens (trace both "
             "checkpoints on the same data)",
             pair, na, nb);
    Cursor ca(a), cb(b);
    for (int64_t g = 0; !ca.done(); ++g, ca.next(), cb.next()) {
        const auto& x = ca.chunk();
        const auto& y = cb.chunk();
        const int64_t i = ca.i, j = cb.i;
        const std::string& la = ha.languages[x.lang[i]].code;
        const std::string& lb = hb.languages[y.lang[j]].code;
        if (x.doc[i] != y.doc[j] || x.position[i] != y.position[j] || x.token[i] != y.token[j] ||
            x.passage[i] != y.passage[j] || la != lb)
            fail(kComponent,
                 "{}: expected identical tokens, found token {} differs: document {} vs {}, "
                 "position {} vs {}, token id {} vs {}, language {} vs {}, passage {} vs {} "
                 "(trace both checkpoints on the same data)",
                 pair, g, x.doc[i], y.doc[j], x.position[i], y.position[j], x.token[i], y.token[j],
                 la, lb, x.passage[i], y.passage[j]);
    }
}

nlohmann::json drift_report(const trace::TraceView& va,
                            const TraceStats& a,
                            const trace::TraceView& vb,
                            const TraceStats& b,
                            int n_boot,
                            double level,
                            uint64_t seed) {
    check_same_tokens(va, vb);
    POLYMOE_CHECK(a.estimator == b.estimator, "drift: unit sums of different estimators");
    const int E = a.E, K = a.K, R = a.R, nL = a.nL;
    const int64_t U = a.num_units();
    const size_t RE = static_cast<size_t>(R) * E;

    // overlap[u * R + r] = sum over the unit's tokens of |S_A ∩ S_B| / K.
    std::unordered_map<uint64_t, int64_t> unit_of;
    for (int64_t u = 0; u < U; ++u) {
        const Unit& un = a.units[static_cast<size_t>(u)];
        unit_of[(static_cast<uint64_t>(a.doc_ids[static_cast<size_t>(un.doc)]) << 32) |
                static_cast<uint32_t>(un.passage)] = u;
    }
    std::vector<double> overlap(static_cast<size_t>(U) * R, 0.0);
    parallel_for(R, 1, [&](int64_t r0, int64_t r1, int) {
        std::vector<uint64_t> stamp(static_cast<size_t>(E), 0);
        uint64_t tick = 0;
        for (int64_t r = r0; r < r1; ++r) {
            const int rr = static_cast<int>(r);
            int64_t unit = -1;
            uint32_t doc = 0;
            int32_t pass = 0;
            double acc = 0;
            for (Cursor ca(va), cb(vb); !ca.done(); ca.next(), cb.next()) {
                const auto& x = ca.chunk();
                if (unit < 0 || x.doc[ca.i] != doc || x.passage[ca.i] != pass) {
                    if (unit >= 0) overlap[static_cast<size_t>(unit * R + r)] += acc;
                    acc = 0;
                    doc = x.doc[ca.i];
                    pass = x.passage[ca.i];
                    // Present by construction: both traces' tokens were checked equal and a's
                    // units cover every (document, passage) of a.
                    const auto it =
                        unit_of.find((uint64_t{doc} << 32) | static_cast<uint32_t>(pass));
                    POLYMOE_CHECK(it != unit_of.end(), "drift: unknown unit doc {} passage {}", doc,
                                  pass);
                    unit = it->second;
                }
                const uint16_t* ea = x.experts_at(rr, ca.i, K);
                const uint16_t* eb = cb.chunk().experts_at(rr, cb.i, K);
                ++tick;
                for (int k = 0; k < K; ++k)
                    stamp[ea[k]] = tick;
                int same = 0;
                for (int k = 0; k < K; ++k)
                    same += stamp[eb[k]] == tick;
                acc += static_cast<double>(same) / K;
            }
            if (unit >= 0) overlap[static_cast<size_t>(unit * R + r)] += acc;
        }
    });

    // Per-language statistics of one (re)sample: overlap mean [nL][R] and JSD(p_A, p_B) [nL][R].
    auto stats = [&](std::vector<double>* out, std::span<const int32_t> mult,
                     std::vector<double>* ma, std::vector<double>* mb, std::vector<double>* tok) {
        ma->resize(static_cast<size_t>(nL) * RE);
        mb->resize(static_cast<size_t>(nL) * RE);
        tok->resize(static_cast<size_t>(nL));
        aggregate_units(*ma, *tok, a, mult, {});
        aggregate_units(*mb, *tok, b, mult, a.doc_lang);
        out->assign(static_cast<size_t>(nL) * R * 2, 0.0);
        for (int64_t u = 0; u < U; ++u) {
            const Unit& un = a.units[static_cast<size_t>(u)];
            const double m = mult.empty() ? 1.0 : mult[static_cast<size_t>(un.doc)];
            for (int r = 0; r < R; ++r)
                (*out)[static_cast<size_t>(un.lang) * R + r] +=
                    m * overlap[static_cast<size_t>(u * R + r)];
        }
        std::vector<double> pa(static_cast<size_t>(E)), pb(static_cast<size_t>(E));
        for (int l = 0; l < nL; ++l)
            for (int r = 0; r < R; ++r) {
                const size_t o = static_cast<size_t>(l) * RE + static_cast<size_t>(r) * E;
                double& ov = (*out)[static_cast<size_t>(l) * R + r];
                ov = (*tok)[static_cast<size_t>(l)] > 0 ? ov / (*tok)[static_cast<size_t>(l)] : 0;
                normalize(pa, std::span<const double>(ma->data() + o, E));
                normalize(pb, std::span<const double>(mb->data() + o, E));
                (*out)[static_cast<size_t>(nL + l) * R + r] = jsd_bits(pa, pb);
            }
    };
    std::vector<double> point, ma, mb, tok;
    stats(&point, {}, &ma, &mb, &tok);
    std::vector<std::vector<double>> reps(static_cast<size_t>(n_boot));
    parallel_for(n_boot, 1, [&](int64_t b0, int64_t b1, int) {
        std::vector<int32_t> mult;
        std::vector<double> xa, xb, xt;
        for (int64_t rep = b0; rep < b1; ++rep) {
            bootstrap_multiplicities(&mult, a, seed, "drift", rep);
            stats(&reps[static_cast<size_t>(rep)], mult, &xa, &xb, &xt);
        }
    });

    nlohmann::json langs = nlohmann::json::array();
    std::vector<double> vals, pa(static_cast<size_t>(E)), pb(static_cast<size_t>(E)), ch(E);
    for (int l = 0; l < nL; ++l) {
        nlohmann::json layers = nlohmann::json::array();
        for (int r = 0; r < R; ++r) {
            auto interval = [&](size_t idx) {
                vals.clear();
                for (const auto& rp : reps)
                    vals.push_back(rp[idx]);
                return percentile_interval(vals, level);
            };
            const size_t io = static_cast<size_t>(l) * R + r;
            const size_t ij = static_cast<size_t>(nL + l) * R + r;
            const size_t o = static_cast<size_t>(l) * RE + static_cast<size_t>(r) * E;
            normalize(pa, std::span<const double>(ma.data() + o, E));
            normalize(pb, std::span<const double>(mb.data() + o, E));
            for (int e = 0; e < E; ++e)
                ch[static_cast<size_t>(e)] =
                    pb[static_cast<size_t>(e)] - pa[static_cast<size_t>(e)];
            layers.push_back({{"layer", a.layers[static_cast<size_t>(r)]},
                              {"overlap", ci_json(point[io], interval(io))},
                              {"jsd_bits", ci_json(point[ij], interval(ij))},
                              {"p_from", num_array(pa)},
                              {"p_to", num_array(pb)},
                              {"change", num_array(ch)}});
        }
        langs.push_back({{"language", a.languages[static_cast<size_t>(l)].code},
                         {"documents", a.lang_docs[static_cast<size_t>(l)].size()},
                         {"tokens", a.lang_tokens[static_cast<size_t>(l)]},
                         {"layers", std::move(layers)}});
    }
    return {{"from", a.label},
            {"to", b.label},
            {"definition", "drift"},
            {"estimator", estimator_name(a.estimator)},
            {"overlap_units", "fraction of K"},
            {"jsd_units", "bits"},
            {"tokens", a.tokens},
            {"documents", a.num_docs()},
            {"languages", std::move(langs)}};
}

}  // namespace polymoe::analysis
