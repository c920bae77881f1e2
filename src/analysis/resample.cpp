// Seeded bootstrap, permutation and subset draws, per-language aggregation of unit sums, and the
// percentile / permutation summaries (see resample.h).
#include "analysis/resample.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "analysis/divergence.h"
#include "core/check.h"

namespace polymoe::analysis {

uint64_t stream_key(uint64_t seed, std::string_view purpose, uint64_t index) {
    // Mix the index through splitmix64 so neighbouring streams do not overlap in counter space.
    return splitmix64(rng_key(seed, purpose) ^ splitmix64(index * 0x9e3779b97f4a7c15ull + 1));
}

double draw_uniform(uint64_t key, uint64_t i) {
    return rng_uniform(key, i);
}

void bootstrap_multiplicities(std::vector<int32_t>* mult,
                              const TraceStats& st,
                              uint64_t seed,
                              std::string_view purpose,
                              int64_t rep) {
    mult->assign(static_cast<size_t>(st.num_docs()), 0);
    for (int a = 0; a < st.nL; ++a) {
        const auto& docs = st.lang_docs[static_cast<size_t>(a)];
        const uint64_t n = docs.size();
        const uint64_t key = stream_key(
            seed, purpose, static_cast<uint64_t>(rep) * st.nL + static_cast<uint64_t>(a));
        for (uint64_t i = 0; i < n; ++i)
            ++(*mult)[static_cast<size_t>(docs[draw_below(key, i, n)])];
    }
}

void permuted_labels(std::vector<int>* lang, const TraceStats& st, uint64_t seed, int64_t rep) {
    *lang = st.doc_lang;
    const uint64_t key = stream_key(seed, "permutation", static_cast<uint64_t>(rep));
    // Fisher-Yates from the back: position i swaps with a uniform j in [0, i].
    for (size_t i = lang->size(); i > 1; --i) {
        const size_t j = draw_below(key, i, i);
        std::swap((*lang)[i - 1], (*lang)[j]);
    }
}

void random_subset(std::span<int64_t> v, int64_t k, uint64_t key) {
    const uint64_t n = v.size();
    for (uint64_t i = 0; i < static_cast<uint64_t>(k) && i + 1 < n; ++i) {
        const uint64_t j = i + draw_below(key, i, n - i);
        std::swap(v[i], v[j]);
    }
}

void aggregate_units(std::span<double> mass,
                     std::span<double> tokens,
                     const TraceStats& st,
                     std::span<const int32_t> mult,
                     std::span<const int> label) {
    const size_t RE = static_cast<size_t>(st.R) * st.E;
    POLYMOE_CHECK(mass.size() == RE * st.nL && tokens.size() == static_cast<size_t>(st.nL),
                  "aggregate_units: sizes {} {}", mass.size(), tokens.size());
    std::fill(mass.begin(), mass.end(), 0.0);
    std::fill(tokens.begin(), tokens.end(), 0.0);
    for (int64_t u = 0; u < st.num_units(); ++u) {
        const Unit& un = st.units[static_cast<size_t>(u)];
        const double m = mult.empty() ? 1.0 : mult[static_cast<size_t>(un.doc)];
        if (m == 0) continue;
        const int a = label.empty() ? un.lang : label[static_cast<size_t>(un.doc)];
        const double* __restrict src = st.row(u);
        double* __restrict dst = mass.data() + static_cast<size_t>(a) * RE;
        if (m == 1.0) {
            for (size_t j = 0; j < RE; ++j)
                dst[j] += src[j];
        } else {
            for (size_t j = 0; j < RE; ++j)
                dst[j] += m * src[j];
        }
        tokens[static_cast<size_t>(a)] += m * static_cast<double>(un.tokens);
    }
}

Interval percentile_interval(std::vector<double>& values, double level) {
    std::erase_if(values, [](double v) { return !std::isfinite(v); });
    Interval iv;
    iv.n = static_cast<int64_t>(values.size());
    if (values.empty()) {
        iv.lo = iv.hi = std::numeric_limits<double>::quiet_NaN();
        return iv;
    }
    const double alpha = 1.0 - level;
    iv.lo = quantile(values, alpha / 2);
    iv.hi = quantile(values, 1 - alpha / 2);
    return iv;
}

NullSummary null_summary(std::vector<double>& values, double observed) {
    std::erase_if(values, [](double v) { return !std::isfinite(v); });
    NullSummary ns;
    ns.n = static_cast<int64_t>(values.size());
    if (values.empty() || !std::isfinite(observed)) {
        ns.mean = ns.p95 = ns.p_value = std::numeric_limits<double>::quiet_NaN();
        return ns;
    }
    double sum = 0;
    int64_t ge = 0;
    const double tol = 1e-12 * std::max(1.0, std::abs(observed));
    for (double v : values) {
        sum += v;
        if (v >= observed - tol) ++ge;
    }
    ns.mean = sum / static_cast<double>(values.size());
    ns.p95 = quantile(values, 0.95);
    ns.p_value = static_cast<double>(1 + ge) / static_cast<double>(1 + values.size());
    return ns;
}

}  // namespace polymoe::analysis
