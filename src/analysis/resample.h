// Seeded resampling over documents: bootstrap multiplicities (documents drawn with replacement
// within each language), permutations of language labels across documents, split halves, and the
// aggregation of per-unit sums into per-language sums for a resampled data set.
//
// Random numbers are counter-based (core/rng.h's splitmix64): draw i of stream (seed, purpose,
// index) depends on nothing else, so replicate b is the same whatever thread computes it and in
// whatever order. Integers in [0, n) use Lemire's multiply-shift (bias <= n / 2^64).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "analysis/trace_stats.h"
#include "core/rng.h"

namespace polymoe::analysis {

uint64_t stream_key(uint64_t seed, std::string_view purpose, uint64_t index);
// Draw i of a stream as an integer in [0, n).
inline uint64_t draw_below(uint64_t key, uint64_t i, uint64_t n);
// Draw i of a stream as a double in [0, 1).
double draw_uniform(uint64_t key, uint64_t i);

// mult[d] = how often compact document d is drawn in bootstrap replicate `rep`: each language's
// documents are resampled with replacement, as many draws as the language has documents.
void bootstrap_multiplicities(std::vector<int32_t>* mult,
                              const TraceStats& st,
                              uint64_t seed,
                              std::string_view purpose,
                              int64_t rep);

// lang[d] = the language label of document d after permutation `rep` of all documents' labels
// (a uniform shuffle; each language keeps its number of documents).
void permuted_labels(std::vector<int>* lang, const TraceStats& st, uint64_t seed, int64_t rep);

// In place: the first k entries of v become a uniform random k-subset (partial Fisher-Yates).
void random_subset(std::span<int64_t> v, int64_t k, uint64_t key);

// Per-language sums of the units' estimator (st.estimator): mass [nL][R][E], tokens [nL]. A unit of
// document d counts mult[d] times (mult empty: once) for language label[d] (label empty: its own).
// Units are added in index order, so the result is deterministic.
void aggregate_units(std::span<double> mass,
                     std::span<double> tokens,
                     const TraceStats& st,
                     std::span<const int32_t> mult,
                     std::span<const int> label);

// Percentile confidence interval of one statistic over replicate values (NaNs dropped).
struct Interval {
    double lo = 0, hi = 0;
    int64_t n = 0;  // finite replicate values used
};
Interval percentile_interval(std::vector<double>& values, double level);

// Permutation summary of one statistic: null mean, 95th percentile and the p-value
// (1 + #{null >= observed}) / (1 + n), ties within 1e-12 relative counting as >=.
struct NullSummary {
    double mean = 0, p95 = 0, p_value = 0;
    int64_t n = 0;
};
NullSummary null_summary(std::vector<double>& values, double observed);

inline uint64_t draw_below(uint64_t key, uint64_t i, uint64_t n) {
    const uint64_t x = splitmix64(key + i);
    return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
}

}  // namespace polymoe::analysis
