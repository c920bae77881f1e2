// Routing analysis from aggregate count tables: released routing statistics (OLMoE's per-domain
// expert counts, per-language counts of other MoE models) hold, per group and layer, how many
// top-k slots went to each expert, and nothing per token or per document. analyze_counts() turns
// such a table into the same JSON schema analyze() writes for traces: every statistic that is a
// function of the per-group sums (distributions, entropy, JSD in bits and nats, normalised JSD,
// NMI and its trend, specific and shared experts, reuse with its random-set baseline, language
// rates) is computed by the same code as for traces; what needs documents, passages, token ids
// or per-token top-k sets (bootstrap CIs, permutation nulls, split-half floors, paired JSD,
// restricted JSD, co-activation, top tokens) stays in place as null, and the section's
// `availability` object says why.
//
// Tokens per group are not in a count table: they are estimated as the group's slots at a layer
// divided by K, averaged over layers (exact for slot counts; for other sums such as routing
// weights it makes the per-token normalisation of specific experts a per-mass one).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/analysis.h"

namespace polymoe::analysis {

struct CountTable {
    std::string path;                  // source file, for the JSON and errors
    std::string label;                 // section label (default: the file stem)
    std::vector<std::string> names;    // [n] group names (languages, domains)
    std::vector<std::string> related;  // [n] related group of each ('' = none), for reuse
    std::vector<int> layers;           // [L] model layer numbers
    int E = 0, K = 0;
    std::vector<double> counts;  // [n][L][E] slots (or other non-negative sums)
    bool integral = true;        // every count is a whole number
    nlohmann::json keys;         // which archive keys / values were used
    std::vector<std::string> notes;
};

// Which keys of the archive hold the table (CLI --counts-key, --names-key, --layers-key), and K
// if given (--top-k; 0 = from the `top_k` key, else from a "top<K>" suffix of the counts key).
struct CountTableKeys {
    std::string counts = "counts", names = "names", layers = "layers";
    int top_k = 0;
};

// Reads and validates a count table from an .npz archive: counts [n, L, E] of any numeric dtype,
// finite and non-negative; names [n] unicode; optional layers [L], top_k [], num_experts [] and
// related [n] unicode (each group's related higher-resource group, '' for none: expert reuse).
// Keys not named are ignored. Throws polymoe::Error naming the file and key.
CountTable read_count_table(const std::string& path, const CountTableKeys& keys);

// The sufficient statistics a count table gives (one pseudo-document per group; see above).
TraceStats count_table_stats(const CountTable& table);

// analyze() for one count table: {"schema_version", "kind", "definitions", "options", "traces":
// [section], "drift": []}.
nlohmann::json analyze_counts(const CountTable& table, const AnalysisOptions& options);

}  // namespace polymoe::analysis
