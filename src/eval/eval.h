// Per-language evaluation of checkpoints on prepared held-out text: cross-entropy per token
// (nats), perplexity and bits per byte, each with a bootstrap confidence interval over documents.
//
// Every document is scored as training saw it: preceded by EOS (the packing separator), so
// each of its tokens is predicted; documents longer than seq−1 tokens are scored in windows that
// each start again after EOS. Bits per byte = Σ CE / ln 2 / Σ UTF-8 bytes of the predicted
// tokens (a token's bytes are its byte-level spelling; added tokens count their content), which
// makes languages whose tokenizer fertility differs comparable. CIs: percentile bootstrap over
// the language's documents (ratio estimators recomputed per replicate), seeded.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/intervention.h"
#include "model/params.h"
#include "tokenizer/tokenizer.h"

namespace polymoe::eval {

struct EvalOptions {
    std::string split = "heldout";
    std::vector<std::string> languages;  // empty: all prepared
    int64_t batch = 8, seq = 512;
    int64_t max_tokens = 0;  // per language, 0 = all
    int bootstrap = 1000;
    uint64_t seed = 0;
};

// Sufficient statistics of one document.
struct DocScore {
    double loss_nats = 0;  // Σ CE over its predicted tokens
    int64_t tokens = 0, bytes = 0;
};

// Scores every document of the chosen languages; returns language code -> per-document scores.
std::vector<std::pair<std::string, std::vector<DocScore>>> score_documents(
    const model::OlmoeWeights& w,
    const tokenizer::Tokenizer& tok,
    const std::string& prepared_dir,
    const EvalOptions& o,
    const model::Intervention* intervention = nullptr);

// Bytes of every token id's text (byte-level spelling decoded; added tokens: their content).
std::vector<int64_t> token_byte_lengths(const tokenizer::Tokenizer& tok);

// {"documents", "tokens", "bytes", "ce_nats", "perplexity", "bits_per_byte"}, the last three as
// {"value", "lo", "hi", "n_boot"} (95% percentile bootstrap over documents).
nlohmann::ordered_json summarize(const std::vector<DocScore>& docs, int n_boot, uint64_t seed);

// Change from `base` to `other` (the same documents scored two ways, e.g. without and with an
// intervention): {"delta_ce_nats", "delta_bits_per_byte"} as {"value", "lo", "hi", "n_boot"},
// value = other − base of the pooled ratios; the bootstrap resamples documents and keeps each
// document's pair together. Throws if the documents do not correspond (count or tokens).
nlohmann::ordered_json summarize_delta(const std::vector<DocScore>& base,
                                       const std::vector<DocScore>& other,
                                       int n_boot,
                                       uint64_t seed);

}  // namespace polymoe::eval
