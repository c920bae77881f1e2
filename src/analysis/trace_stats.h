// Sufficient statistics of one routing trace, built in one streaming, multi-threaded pass: every
// later statistic (point estimates, bootstrap replicates, permutations, split halves) works on
// these sums and never re-reads the trace.
//
// The unit of the sums is a "unit": the tokens of one document carrying one passage id (normally a
// whole document; a document whose tokens carry several passage ids has one unit per id). With w_k
// the k-th routing weight of a token as applied, the three estimators' sums at layer r, expert e:
//   counts = number of top-k slots routed to e
//   weight = sum of w_k over slots routed to e
//   renorm = sum of w_k / sum_j w_j over slots routed to e (a token whose weights sum to 0 counts
//            1/K per slot)
// are kept per unit for the chosen (primary) estimator, the one every resampled statistic uses,
// and per language for all three (their point estimates), plus token counts. Side tables from the
// same pass: per-language co-activation pair counts, vocabulary-restricted sums (a's mass over
// tokens whose id also occurs in language b), and per (layer, expert) the most frequent token ids.
//
// Parallel work is split into (layer, language) tiles; every output cell is written by exactly
// one tile in trace order, so results do not depend on the thread count at all.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/language.h"
#include "trace/trace.h"

namespace polymoe::analysis {

enum class Estimator : int { kCounts = 0, kWeight = 1, kRenorm = 2 };
inline constexpr int kNumEstimators = 3;
inline constexpr Estimator kAllEstimators[kNumEstimators] = {Estimator::kCounts, Estimator::kWeight,
                                                             Estimator::kRenorm};

const char* estimator_name(Estimator e);
// "counts" | "weight" | "renorm"; throws polymoe::Error otherwise.
Estimator parse_estimator(std::string_view name);

struct CollectOptions {
    Estimator estimator = Estimator::kCounts;  // of the per-unit and restricted sums
    bool coactivation = true;                  // per-language E x E pair counts
    bool restricted = true;                    // vocabulary-restricted sums
    int top_tokens = 10;                       // per (layer, expert); 0 = skip that table
    // The restricted sums need one [R][E] row per (language, token-set signature); above this
    // many bytes they are skipped (and the reason recorded) instead of exhausting memory.
    int64_t restricted_max_bytes = int64_t{1} << 30;
};

struct Unit {
    int64_t doc = 0;       // compact document index (TraceStats::doc_ids)
    int32_t passage = -1;  // parallel-passage id, -1 if none
    int lang = 0;          // language index (TraceStats::languages)
    int64_t tokens = 0;
};

struct TopToken {
    uint32_t token = 0;
    int64_t count = 0;        // slots of this token id routed to the expert
    int64_t occurrences = 0;  // occurrences of this token id in the trace
};

struct TraceStats {
    int E = 0, K = 0, R = 0;
    int nL = 0;                                 // languages present (>= 1 token)
    std::vector<int> layers;                    // model layer number of each recorded layer
    std::vector<data::LanguageInfo> languages;  // present languages, in header order
    std::vector<std::string> absent_languages;  // header languages without tokens
    std::string label, model, data;
    int64_t tokens = 0;
    // Built from an aggregate count table (count_table.h), not a trace: one pseudo-unit per
    // language, no documents, passages, token ids or per-token top-k sets; token_estimate[a] is
    // the (possibly fractional) token count used in place of lang_tokens.
    bool from_counts = false;
    std::vector<double> token_estimate;

    std::vector<Unit> units;                       // in order of first appearance
    std::vector<int64_t> doc_ids;                  // compact doc -> trace document id
    std::vector<int> doc_lang;                     // compact doc -> language
    std::vector<std::vector<int64_t>> lang_docs;   // language -> compact docs, ascending
    std::vector<std::vector<int64_t>> lang_units;  // language -> units, ascending
    std::vector<int64_t> lang_tokens;              // tokens per language
    Estimator estimator = Estimator::kCounts;      // of unit_sums
    std::vector<double> unit_sums;                 // [U][R][E]
    std::array<std::vector<double>, kNumEstimators> lang_sums;  // per estimator: [nL][R][E]

    // Vocabulary: distinct token ids per language and shared between languages, [nL][nL]
    // (diagonal = |V_a|).
    int64_t vocab_size = 0;  // distinct token ids in the whole trace
    std::vector<int64_t> shared_vocab;

    // restricted[((a * nL + b) * R + r) * E + e]: language a's mass (restricted_estimator) at
    // layer r on expert e over a's tokens whose id also occurs in language b.
    bool has_restricted = false;
    std::string restricted_note;  // why it is missing, if it is
    Estimator restricted_estimator = Estimator::kCounts;
    std::vector<double> restricted;

    // coact[((a * R + r) * E + e1) * E + e2], e1 < e2: tokens of language a whose layer-r top-k
    // set contains both e1 and e2 (upper triangle only; the rest is 0).
    bool has_coactivation = false;
    std::vector<uint32_t> coact;

    // top_tokens[r * E + e]: the most frequent token ids among slots routed to e at layer r,
    // by count descending, then token id ascending.
    std::vector<std::vector<TopToken>> top_tokens;

    int64_t num_units() const { return static_cast<int64_t>(units.size()); }
    int64_t num_docs() const { return static_cast<int64_t>(doc_ids.size()); }
    // [R][E] sums of unit u (estimator `estimator`).
    const double* row(int64_t u) const { return unit_sums.data() + u * R * E; }
    // [nL][R][E] sums of every language's units for any estimator.
    const std::vector<double>& lang_sum(Estimator est) const {
        return lang_sums[static_cast<size_t>(est)];
    }
};

// Validates the trace (expert ids < E and distinct within a token, finite non-negative weights,
// one language per document) and builds its statistics. Throws polymoe::Error naming the first
// offending token.
TraceStats collect_trace_stats(const trace::TraceView& view, const CollectOptions& options);

}  // namespace polymoe::analysis
