// Internal to the analysis library: the state one trace's report sections share (statistics,
// options, metric layout, point estimate, bootstrap and permutation replicates), and the section
// builders that live outside trace_report.cpp.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/analysis.h"
#include "analysis/json_util.h"
#include "analysis/metrics.h"
#include "analysis/resample.h"

namespace polymoe::analysis {

// Why statistics that need documents, passages or per-token data are absent for count tables.
inline constexpr const char* kNoBootstrapReason =
    "a count table has no documents to resample (only per-group totals)";
inline constexpr const char* kNoPermutationReason =
    "a count table has no documents whose group labels could be shuffled";
inline constexpr const char* kNoSplitHalfReason = "a count table has no documents to split";
inline constexpr const char* kNoPairedReason = "a count table has no parallel passages";
inline constexpr const char* kNoCoactivationReason =
    "a count table has no per-token top-k sets (which experts a token used together)";
inline constexpr const char* kNoTokenIdsReason = "a count table has no token ids";

// Everything the sections share: the statistics, options, metric layout and replicates.
struct ReportContext {
    const TraceStats& st;
    const AnalysisOptions& o;
    MetricSpec spec;
    ScalarLayout layout;
    Replicate point;
    std::vector<Replicate> boot, perm;
    std::vector<double> mass;  // [nL][R][E] primary-estimator sums of all units
    std::vector<double> tokens;
    std::vector<std::string> skipped_reuse;
    std::string overlap_source;
    std::vector<double> overlap_full;  // [nL][nL] as used (given or from the trace)
    int reuse_random = 0;              // random expert sets of the reuse baseline

    ReportContext(const TraceStats& s, const AnalysisOptions& opt, MetricSpec sp)
        : st(s), o(opt), spec(std::move(sp)), layout(spec) {}

    // {value, lo, hi, n_boot} of scalar idx (optionally scaled, e.g. bits -> nats).
    nlohmann::json ci(int64_t idx) const {
        std::vector<double> v;
        v.reserve(boot.size());
        for (const auto& b : boot)
            v.push_back(b.s[static_cast<size_t>(idx)]);
        return ci_json(point.s[static_cast<size_t>(idx)], percentile_interval(v, o.ci_level));
    }
    nlohmann::json ci_scaled(int64_t idx, double scale) const {
        std::vector<double> v;
        for (const auto& b : boot)
            v.push_back(b.s[static_cast<size_t>(idx)] * scale);
        return ci_json(point.s[static_cast<size_t>(idx)] * scale,
                       percentile_interval(v, o.ci_level));
    }
    // {null_mean, null_p95, p_value, n_perm} of scalar idx over the permutations.
    nlohmann::json null(int64_t idx) const {
        std::vector<double> v;
        for (const auto& p : perm)
            v.push_back(p.s[static_cast<size_t>(idx)]);
        const NullSummary ns = null_summary(v, point.s[static_cast<size_t>(idx)]);
        nlohmann::json out = {{"null_mean", num(ns.mean)},
                              {"null_p95", num(ns.p95)},
                              {"p_value", num(ns.p_value)},
                              {"n_perm", ns.n}};
        if (st.from_counts) {
            out["available"] = false;
            out["reason"] = kNoPermutationReason;
        }
        return out;
    }
    const std::string& code(int a) const { return st.languages[static_cast<size_t>(a)].code; }
};

// Sections built in report_tables.cpp.
nlohmann::json script_json(const ReportContext& c);
nlohmann::json coactivation_json(const ReportContext& c);
nlohmann::json vocabulary_json(const ReportContext& c);

}  // namespace polymoe::analysis
