// Front door of the routing analysis: analyze() takes one or more routing traces (with labels),
// builds each trace's sufficient statistics in one streaming pass (trace_stats.h), computes every
// statistic with seeded bootstrap intervals and permutation nulls, adds drift between consecutive
// traces, and returns one JSON document (schema in docs/analysis.md; every number carries its
// definition name, units and sample sizes). write_csv_tables() turns that JSON into tidy CSV files.
//
//   auto j = analysis::analyze({{"base", &base.view()}, {"stage1", &s1.view()}}, options);
//   analysis::write_csv_tables(j, "out/analysis_csv");
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/trace_stats.h"
#include "trace/trace.h"

namespace polymoe::analysis {

inline constexpr int kAnalysisSchemaVersion = 1;

// A vocabulary-overlap matrix supplied by the caller: values[i * n + j] = overlap of language
// languages[i] with languages[j] (e.g. the share of i's vocabulary also in j's), n = size.
struct VocabOverlap {
    std::vector<std::string> languages;
    std::vector<double> values;
};

struct AnalysisOptions {
    // Estimator of the expert distribution used for every bootstrapped / permuted statistic
    // (all three estimators' distributions, entropies and JSD matrices are reported anyway).
    Estimator estimator = Estimator::kCounts;
    int bootstrap = 200;          // replicates (documents resampled within language); 0 = no CIs
    int permutations = 200;       // language-label shuffles across documents; 0 = no nulls
    int split_half_repeats = 20;  // random halves per language for the JSD floor
    uint64_t seed = 0;
    double ci_level = 0.95;           // percentile interval level
    double specific_threshold = 0.5;  // share of an expert's mass from one language
    double specific_ratio = 2.0;      // ... and at least this times the next language's share
    double shared_factor = 0.5;       // shared: every language at >= factor * K/E of its slots
    int reuse_top_m = 0;              // top-m experts of the related language; 0 = K
    int top_tokens = 10;              // top token ids per (layer, expert); 0 = skip
    bool paired = true;               // paired JSD on parallel passages
    bool restricted = true;           // JSD restricted to shared token ids
    bool coactivation = true;
    int coactivation_top = 10;           // top pairs per (language, layer) in the JSON
    bool coactivation_matrices = false;  // full E x E frequency and lift matrices in the JSON
    VocabOverlap vocab_overlap;          // empty: computed from the trace
    bool drift = true;                   // drift between consecutive traces (tokens must match)
};

struct LabeledTrace {
    std::string label;  // empty: the trace header's label
    const trace::TraceView* view = nullptr;
};

// Throws polymoe::Error for an out-of-range option.
void validate_options(const AnalysisOptions& options);

// The whole analysis as JSON: {"schema_version", "definitions", "options", "traces": [...],
// "drift": [...]}. Throws polymoe::Error for invalid traces or options.
nlohmann::json analyze(const std::vector<LabeledTrace>& traces, const AnalysisOptions& options);

// The section of one trace from its statistics (analyze() calls this per trace).
nlohmann::json trace_report(const TraceStats& stats, const AnalysisOptions& options);

// The options as written in the JSON's "options" object.
nlohmann::json options_json(const AnalysisOptions& options);

// Name -> one-line definition of every quantity in the JSON (docs/analysis.md has the long form).
nlohmann::json definitions();

// Writes tidy CSV tables from an analyze() result into `dir` (created if needed): distributions,
// entropy, jsd, specialisation, specialisation_trend, specific_experts, reuse, drift (.csv).
// Returns the paths written.
std::vector<std::string> write_csv_tables(const nlohmann::json& analysis, const std::string& dir);

}  // namespace polymoe::analysis
