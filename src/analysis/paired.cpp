// Paired JSD over parallel passages (see paired.h). Passage rows are the per-unit sums (the
// primary estimator); a (passage, language) with several units (a passage split over documents) is
// summed first. Pairs are processed in parallel, each written by one thread; the bootstrap stream
// of a pair depends only on (seed, replicate, pair index).
#include "analysis/paired.h"

#include <algorithm>
#include <map>

#include "analysis/divergence.h"
#include "analysis/resample.h"
#include "core/parallel.h"

namespace polymoe::analysis {

std::vector<PairedJsd> paired_jsd(const TraceStats& st, int n_boot, double level, uint64_t seed) {
    const int R = st.R, E = st.E, nL = st.nL;
    const size_t RE = static_cast<size_t>(R) * E;
    // (passage, language) -> units, ordered by passage then language.
    std::map<std::pair<int32_t, int>, std::vector<int64_t>> groups;
    for (int64_t u = 0; u < st.num_units(); ++u) {
        const Unit& un = st.units[static_cast<size_t>(u)];
        if (un.passage >= 0) groups[{un.passage, un.lang}].push_back(u);
    }
    std::vector<const double*> rows;
    std::vector<std::vector<double>> pooled;  // storage of multi-unit passage rows
    std::vector<std::vector<std::pair<int32_t, int64_t>>> by_lang(static_cast<size_t>(nL));
    for (const auto& [key, units] : groups) {
        if (units.size() == 1) {
            rows.push_back(st.row(units[0]));
        } else {
            pooled.emplace_back(RE, 0.0);
            for (int64_t u : units) {
                const double* src = st.row(u);
                for (size_t j = 0; j < RE; ++j)
                    pooled.back()[j] += src[j];
            }
            rows.push_back(pooled.back().data());
        }
        by_lang[static_cast<size_t>(key.second)].emplace_back(
            key.first, static_cast<int64_t>(rows.size()) - 1);
    }

    std::vector<std::pair<int, int>> pairs;
    for (int a = 0; a < nL; ++a)
        for (int b = a + 1; b < nL; ++b)
            pairs.emplace_back(a, b);
    std::vector<PairedJsd> out(pairs.size());
    parallel_for(static_cast<int64_t>(pairs.size()), 1, [&](int64_t p0, int64_t p1, int) {
        std::vector<double> pa(static_cast<size_t>(E)), pb(static_cast<size_t>(E));
        std::vector<double> sa(RE), sb(RE), vals, boot;
        for (int64_t pi = p0; pi < p1; ++pi) {
            const auto [a, b] = pairs[static_cast<size_t>(pi)];
            PairedJsd& res = out[static_cast<size_t>(pi)];
            res.a = a;
            res.b = b;
            // Passages of both languages (both lists are sorted by passage id).
            std::vector<std::pair<int64_t, int64_t>> shared;
            const auto& la = by_lang[static_cast<size_t>(a)];
            const auto& lb = by_lang[static_cast<size_t>(b)];
            for (size_t i = 0, j = 0; i < la.size() && j < lb.size();) {
                if (la[i].first < lb[j].first) {
                    ++i;
                } else if (lb[j].first < la[i].first) {
                    ++j;
                } else {
                    shared.emplace_back(la[i++].second, lb[j++].second);
                }
            }
            const int64_t n = static_cast<int64_t>(shared.size());
            res.passages = n;
            if (n == 0) continue;
            // vals[p * R + r]: JSD of passage p at layer r.
            vals.assign(static_cast<size_t>(n) * R, 0.0);
            std::fill(sa.begin(), sa.end(), 0.0);
            std::fill(sb.begin(), sb.end(), 0.0);
            for (int64_t p = 0; p < n; ++p) {
                const double* ra = rows[static_cast<size_t>(shared[static_cast<size_t>(p)].first)];
                const double* rb = rows[static_cast<size_t>(shared[static_cast<size_t>(p)].second)];
                for (size_t j = 0; j < RE; ++j) {
                    sa[j] += ra[j];
                    sb[j] += rb[j];
                }
                for (int r = 0; r < R; ++r) {
                    normalize(pa, std::span<const double>(ra + static_cast<size_t>(r) * E, E));
                    normalize(pb, std::span<const double>(rb + static_cast<size_t>(r) * E, E));
                    vals[static_cast<size_t>(p) * R + r] = jsd_bits(pa, pb);
                }
            }
            res.mean.assign(static_cast<size_t>(R), 0.0);
            res.aggregate.resize(static_cast<size_t>(R));
            for (int r = 0; r < R; ++r) {
                for (int64_t p = 0; p < n; ++p)
                    res.mean[static_cast<size_t>(r)] += vals[static_cast<size_t>(p) * R + r];
                res.mean[static_cast<size_t>(r)] /= static_cast<double>(n);
                normalize(pa, std::span<const double>(sa.data() + static_cast<size_t>(r) * E, E));
                normalize(pb, std::span<const double>(sb.data() + static_cast<size_t>(r) * E, E));
                res.aggregate[static_cast<size_t>(r)] = jsd_bits(pa, pb);
            }
            // Bootstrap of the mean: passages drawn with replacement.
            std::vector<double> reps(static_cast<size_t>(n_boot) * R, 0.0);
            for (int rep = 0; rep < n_boot; ++rep) {
                const uint64_t key =
                    stream_key(seed, "paired", static_cast<uint64_t>(rep) * pairs.size() + pi);
                double* m = reps.data() + static_cast<size_t>(rep) * R;
                for (int64_t i = 0; i < n; ++i) {
                    const uint64_t p = draw_below(key, static_cast<uint64_t>(i), n);
                    for (int r = 0; r < R; ++r)
                        m[r] += vals[p * R + static_cast<uint64_t>(r)];
                }
                for (int r = 0; r < R; ++r)
                    m[r] /= static_cast<double>(n);
            }
            res.lo.resize(static_cast<size_t>(R));
            res.hi.resize(static_cast<size_t>(R));
            for (int r = 0; r < R; ++r) {
                boot.resize(static_cast<size_t>(n_boot));
                for (int rep = 0; rep < n_boot; ++rep)
                    boot[static_cast<size_t>(rep)] = reps[static_cast<size_t>(rep) * R + r];
                const Interval iv = percentile_interval(boot, level);
                res.lo[static_cast<size_t>(r)] = iv.lo;
                res.hi[static_cast<size_t>(r)] = iv.hi;
                res.n_boot = iv.n;
            }
        }
    });
    std::erase_if(out, [](const PairedJsd& p) { return p.passages == 0; });
    return out;
}

}  // namespace polymoe::analysis
