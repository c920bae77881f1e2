// Routing–performance correlation: does a language's routing at a layer go with its held-out
// quality? Across languages and checkpoints, per recorded layer, the correlation (Pearson and
// Spearman) between a per-language routing statistic — its distinctiveness (mean JSD in bits to
// every other language) or its routing entropy — and its bits per byte from eval.json, pooled
// over all (language, checkpoint) points, as changes from the first to the last checkpoint, and
// within each checkpoint (averaged; the pooled numbers also carry the checkpoint effect, since
// training on a language moves both its routing and its loss).
// Intervals come from a cluster bootstrap over languages (a replicate draws languages with
// replacement and keeps all of a drawn language's checkpoints), so they describe which languages
// happened to be studied, not the documents within them. This is correlation, not causation; the
// ablations (eval/ablate) are the causal test.
#pragma once

#include <nlohmann/json.hpp>

#include "analysis/analysis.h"

namespace polymoe::analysis {

// `analysis`: an analyze() result; `eval`: polymoe eval's JSON (models[].label,
// models[].languages[code].bits_per_byte.value). Checkpoints are matched by label (analysis trace
// label = eval model label), languages by code. Returns the "routing_performance" section; if
// fewer than 3 languages or no checkpoint match it says so ("available": false, "reason").
// Throws polymoe::Error for JSON that lacks the fields named above.
nlohmann::json routing_performance(const nlohmann::json& analysis,
                                   const nlohmann::json& eval,
                                   const AnalysisOptions& options);

}  // namespace polymoe::analysis
