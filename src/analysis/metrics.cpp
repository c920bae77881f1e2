// compute_metrics (see metrics.h): distributions and entropies per (language, layer), pairwise JSD,
// NMI and its layer trend, language-specific and shared experts, expert reuse shares and the
// JSD-overlap correlation, all from one [nL][R][E] table of sums. Loops run in a fixed order so a
// replicate's numbers depend only on its input sums.
#include "analysis/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "analysis/divergence.h"
#include "core/check.h"

namespace polymoe::analysis {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

ScalarLayout::ScalarLayout(const MetricSpec& spec) : R_(spec.R), nL_(spec.nL) {
    n_pairs_ = spec.nL * (spec.nL - 1) / 2;
    int64_t o = 0;
    auto take = [&o](int64_t n) {
        const int64_t at = o;
        o += n;
        return at;
    };
    entropy_ = take(int64_t{spec.nL} * R_);
    jsd_ = take(int64_t{n_pairs_} * R_);
    njsd_ = take(int64_t{n_pairs_} * R_);
    mean_jsd_ = take(R_);
    mean_entropy_ = take(R_);
    nmi_ = take(R_);
    nmi_bal_ = take(R_);
    trend_ = take(4);
    n_spec_ = take(R_);
    n_shared_ = take(R_);
    for (const ReuseRow& row : spec.reuse)
        reuse_.push_back(take(static_cast<int64_t>(row.targets.size()) * R_));
    margin_ = take(static_cast<int64_t>(spec.reuse.size()) * R_);
    corr_ = take(R_ + 1);
    size_ = o;
}

int ScalarLayout::pair(int a, int b) const {
    POLYMOE_CHECK(a != b && a >= 0 && b >= 0 && a < nL_ && b < nL_, "pair({}, {})", a, b);
    if (a > b) std::swap(a, b);
    // Pairs (0,1), (0,2), ..., (0,nL-1), (1,2), ...: row a starts after a rows of shrinking length.
    return a * nL_ - a * (a + 1) / 2 + (b - a - 1);
}

void top_m(std::vector<int32_t>* out,
           std::span<const double> p,
           int m,
           std::vector<int32_t>* order) {
    const int E = static_cast<int>(p.size());
    m = std::clamp(m, 0, E);
    order->resize(static_cast<size_t>(E));
    std::iota(order->begin(), order->end(), 0);
    std::partial_sort(order->begin(), order->begin() + m, order->end(), [&](int32_t x, int32_t y) {
        const double px = p[static_cast<size_t>(x)], py = p[static_cast<size_t>(y)];
        return px != py ? px > py : x < y;
    });
    out->assign(order->begin(), order->begin() + m);
}

void compute_metrics(Replicate* out,
                     std::span<const double> mass,
                     std::span<const double> tokens,
                     const MetricSpec& spec,
                     const ScalarLayout& layout,
                     MetricSet set,
                     MetricWorkspace* ws) {
    const int E = spec.E, R = spec.R, nL = spec.nL;
    const size_t RE = static_cast<size_t>(R) * E;
    POLYMOE_CHECK(mass.size() == static_cast<size_t>(nL) * RE, "mass size {}", mass.size());
    POLYMOE_CHECK(tokens.size() == static_cast<size_t>(nL), "tokens size {}", tokens.size());
    out->s.assign(static_cast<size_t>(layout.size()), kNaN);
    std::vector<double>& s = out->s;

    // Distributions p[a][r][e] and entropies h[a][r] (bits).
    ws->p.resize(mass.size());
    ws->h.resize(static_cast<size_t>(nL) * R);
    for (int a = 0; a < nL; ++a)
        for (int r = 0; r < R; ++r) {
            const size_t o = static_cast<size_t>(a) * RE + static_cast<size_t>(r) * E;
            std::span<double> p(ws->p.data() + o, static_cast<size_t>(E));
            normalize(p, mass.subspan(o, static_cast<size_t>(E)));
            ws->h[static_cast<size_t>(a) * R + r] = entropy_bits(p);
        }
    auto dist = [&](int a, int r) {
        return std::span<const double>(
            ws->p.data() + static_cast<size_t>(a) * RE + static_cast<size_t>(r) * E,
            static_cast<size_t>(E));
    };
    for (int a = 0; a < nL; ++a)
        for (int b = a + 1; b < nL; ++b) {
            const int pr = layout.pair(a, b);
            for (int r = 0; r < R; ++r) {
                const double j = jsd_bits(dist(a, r), dist(b, r));
                s[static_cast<size_t>(layout.jsd(pr, r))] = j;
                s[static_cast<size_t>(layout.njsd(pr, r))] =
                    normalized_jsd(j, ws->h[static_cast<size_t>(a) * R + r],
                                   ws->h[static_cast<size_t>(b) * R + r], E);
            }
        }
    if (layout.num_pairs() > 0)
        for (int r = 0; r < R; ++r) {
            double sum = 0;
            for (int pr = 0; pr < layout.num_pairs(); ++pr)
                sum += s[static_cast<size_t>(layout.jsd(pr, r))];
            s[static_cast<size_t>(layout.mean_jsd(r))] = sum / layout.num_pairs();
        }
    // NMI: the joint over (language, expert) is the raw mass (languages weighted by their share
    // of the data) or the normalised distributions (each language weight 1/nL).
    ws->joint.resize(static_cast<size_t>(nL) * E);
    for (int r = 0; r < R; ++r) {
        for (int a = 0; a < nL; ++a)
            std::copy_n(mass.data() + static_cast<size_t>(a) * RE + static_cast<size_t>(r) * E, E,
                        ws->joint.data() + static_cast<size_t>(a) * E);
        s[static_cast<size_t>(layout.nmi(r))] = nmi(ws->joint, nL, E);
        for (int a = 0; a < nL; ++a) {
            auto p = dist(a, r);
            std::copy(p.begin(), p.end(), ws->joint.data() + static_cast<size_t>(a) * E);
        }
        s[static_cast<size_t>(layout.nmi_balanced(r))] = nmi(ws->joint, nL, E);
    }
    if (set == MetricSet::kNull) return;

    for (int a = 0; a < nL; ++a)
        for (int r = 0; r < R; ++r)
            s[static_cast<size_t>(layout.entropy(a, r))] = ws->h[static_cast<size_t>(a) * R + r];
    if (nL > 0)
        for (int r = 0; r < R; ++r) {
            double sum = 0;
            for (int a = 0; a < nL; ++a)
                sum += ws->h[static_cast<size_t>(a) * R + r];
            s[static_cast<size_t>(layout.mean_entropy(r))] = sum / nL;
        }

    // Trend of NMI over the model layer numbers.
    for (int v = 0; v < 2; ++v) {
        ws->y.resize(static_cast<size_t>(R));
        for (int r = 0; r < R; ++r)
            ws->y[static_cast<size_t>(r)] =
                s[static_cast<size_t>(v == 0 ? layout.nmi(r) : layout.nmi_balanced(r))];
        s[static_cast<size_t>(layout.trend(2 * v))] = ls_slope(spec.layer_x, ws->y);
        if (R >= 2) s[static_cast<size_t>(layout.trend(2 * v + 1))] = ws->y.back() - ws->y.front();
    }

    // Language-specific experts: shares of per-token mass m_a[e] / N_a across languages.
    out->specific.assign(RE, -1);
    out->shared.assign(RE, 0);
    const double shared_min = spec.shared_factor / E;
    for (int r = 0; r < R; ++r) {
        int n_spec = 0, n_shared = 0;
        for (int e = 0; e < E; ++e) {
            double total = 0, best = -1, second = 0;
            int best_lang = -1;
            bool shared = nL > 0;
            for (int a = 0; a < nL; ++a) {
                const size_t o = static_cast<size_t>(a) * RE + static_cast<size_t>(r) * E + e;
                const double v = tokens[static_cast<size_t>(a)] > 0
                                     ? mass[o] / tokens[static_cast<size_t>(a)]
                                     : 0.0;
                total += v;
                if (v > best) {
                    second = std::max(second, best);
                    best = v;
                    best_lang = a;
                } else {
                    second = std::max(second, v);
                }
                if (!(ws->p[o] >= shared_min)) shared = false;
            }
            if (total > 0 && nL >= 2) {
                const double top = best / total, next = second / total;
                if (top >= spec.specific_threshold && top >= spec.specific_ratio * next) {
                    out->specific[static_cast<size_t>(r) * E + e] = best_lang;
                    ++n_spec;
                }
            }
            if (shared) {
                out->shared[static_cast<size_t>(r) * E + e] = 1;
                ++n_shared;
            }
        }
        s[static_cast<size_t>(layout.num_specific(r))] = n_spec;
        s[static_cast<size_t>(layout.num_shared(r))] = n_shared;
    }

    // Expert reuse: share of a's distribution on each target language's top-m experts.
    for (size_t row = 0; row < spec.reuse.size(); ++row) {
        const ReuseRow& rr = spec.reuse[row];
        for (int r = 0; r < R; ++r) {
            auto pa = dist(rr.lang, r);
            double unrelated = 0;
            for (size_t t = 0; t < rr.targets.size(); ++t) {
                top_m(&ws->top, dist(rr.targets[t], r), spec.reuse_m, &ws->order);
                double share = 0;
                for (int32_t e : ws->top)
                    share += pa[static_cast<size_t>(e)];
                s[static_cast<size_t>(
                    layout.reuse(static_cast<int>(row), static_cast<int>(t), r))] = share;
                if (t >= 2) unrelated += share;
            }
            if (rr.targets.size() > 2) {
                const double rel =
                    s[static_cast<size_t>(layout.reuse(static_cast<int>(row), 1, r))];
                s[static_cast<size_t>(layout.reuse_margin(static_cast<int>(row), r))] =
                    rel - unrelated / static_cast<double>(rr.targets.size() - 2);
            }
        }
    }

    // Correlation across language pairs of JSD with the vocabulary overlap.
    if (!spec.overlap.empty()) {
        const int P = layout.num_pairs();
        ws->x.assign(static_cast<size_t>(P), 0.0);
        ws->y.resize(static_cast<size_t>(P));
        for (int r = 0; r < R; ++r) {
            for (int pr = 0; pr < P; ++pr) {
                ws->y[static_cast<size_t>(pr)] = s[static_cast<size_t>(layout.jsd(pr, r))];
                ws->x[static_cast<size_t>(pr)] += ws->y[static_cast<size_t>(pr)] / R;
            }
            s[static_cast<size_t>(layout.correlation(r))] = pearson(ws->y, spec.overlap);
        }
        s[static_cast<size_t>(layout.correlation_mean())] = pearson(ws->x, spec.overlap);
    }
}

}  // namespace polymoe::analysis
