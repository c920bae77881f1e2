// Expert ablations: does removing a language's experts hurt that language more than others?
//
// Inputs: a checkpoint, prepared held-out shards, and the language-specific experts found by
// `polymoe analyze` for (a trace of) that checkpoint. For every language A with specific experts
// in a layer range, the forward is rerun with A's experts masked (removed from the top-k
// candidates; or dropped: routing kept, contribution zeroed) at those layers, and every
// language B's held-out cross-entropy is compared with the unablated model:
//   ΔCE[A][B] = (Σ_docs loss_ablated − Σ_docs loss_base) / Σ_docs tokens   (nats per token).
// Control: the same number of experts per layer chosen uniformly at random (several seeds),
// giving ΔCE_random[A][B]. Specificity of A = ΔCE[A][A] − mean_{B≠A} ΔCE[A][B]; the causal claim
// holds where it is positive beyond its CI and above the random control's. Reuse: for a
// low-resource language X related to Y, ΔCE[Y][X] (ablating the related language's experts)
// versus the mean of ΔCE[Z][X] over unrelated high-resource Z. CIs: percentile bootstrap
// resampling each language's documents (paired: a document's base and ablated losses move
// together).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/eval.h"

namespace polymoe::eval {

struct AblateOptions {
    EvalOptions eval;                         // split, batch, seq, max_tokens, bootstrap, seed
    std::string label;                        // analysis trace label (empty: the last trace)
    std::vector<std::pair<int, int>> ranges;  // model layer ranges [first, last]; empty: all
    bool drop = false;                        // drop instead of mask
    int random_seeds = 2;                     // random-expert controls per ablation
    // Which experts are "A's": "specific" (analysis specific_experts, exclusive to A) or "top"
    // (A's top_m experts per layer by routing share, distributions.estimators.counts; related
    // languages may share them, which is what the reuse test probes).
    std::string selection = "specific";
    int top_m = 2;
};

// Runs the specificity matrix (and its controls) and returns interventions.json.
nlohmann::ordered_json run_ablations(const model::OlmoeWeights& w,
                                     const tokenizer::Tokenizer& tok,
                                     const std::string& prepared_dir,
                                     const nlohmann::json& analysis,
                                     const AblateOptions& o);

// Specific experts of each language per model layer from one trace section of analysis.json:
// result[language code][model layer] = expert ids.
std::map<std::string, std::map<int, std::vector<int>>> specific_experts(
    const nlohmann::json& trace_section);

// The top_m experts of each language per model layer by routing-slot share.
std::map<std::string, std::map<int, std::vector<int>>> top_experts(
    const nlohmann::json& trace_section, int top_m);

}  // namespace polymoe::eval
