// Paired JSD on parallel text. For languages a and b, every passage id with tokens in both gives
// one comparison: per layer, JSD between a's and b's expert distributions on that passage alone.
// The paired JSD is the mean over those passages (a bootstrap over passages gives its CI); beside
// it, the aggregate JSD pools the same passages' sums per language before one JSD. Because both
// sides see the same content, the paired number isolates language from topic; its small-sample
// upward bias (few tokens per passage) is why the aggregate is reported next to it.
#pragma once

#include <cstdint>
#include <vector>

#include "analysis/trace_stats.h"

namespace polymoe::analysis {

struct PairedJsd {
    int a = 0, b = 0;               // languages, a < b
    int64_t passages = 0;           // passages with tokens in both
    std::vector<double> mean;       // [R] mean over passages of the per-passage JSD (bits)
    std::vector<double> lo, hi;     // [R] percentile bootstrap interval (passages resampled)
    std::vector<double> aggregate;  // [R] JSD (bits) of the pooled sums over those passages
    int64_t n_boot = 0;
};

// Pairs with at least one shared passage, in pair order (a, b ascending), from the per-unit sums
// (st.estimator).
std::vector<PairedJsd> paired_jsd(const TraceStats& st, int n_boot, double level, uint64_t seed);

}  // namespace polymoe::analysis
