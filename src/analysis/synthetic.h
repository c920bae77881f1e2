// Synthetic routing traces with known structure, for the analysis tests and benchmark: languages
// route by their own expert distributions (identical, shifted, or on disjoint experts), each
// document perturbs its language's distribution (so documents are the unit of variation, as in
// real traces), and each token draws K distinct experts from its document's distribution with the
// drawn probabilities as routing weights. Columns are owned here; view() hands out a TraceView.
#pragma once

#include <cstdint>
#include <vector>

#include "data/language.h"
#include "trace/trace.h"

namespace polymoe::analysis {

// Column storage of one chunk (TraceChunk points into it).
struct OwnedChunk {
    std::vector<uint16_t> lang;
    std::vector<uint32_t> doc;
    std::vector<int32_t> passage;
    std::vector<uint32_t> position, token;
    std::vector<uint16_t> expert;  // [R][n][K]
    std::vector<float> weight;     // [R][n][K]
};

struct OwnedTrace {
    trace::TraceHeader header;
    std::vector<OwnedChunk> chunks;
    trace::TraceView view() const;
};

// Appends tokens in trace order and cuts a chunk every `chunk_tokens` tokens.
class TraceBuilder {
public:
    TraceBuilder(trace::TraceHeader header, int64_t chunk_tokens);
    // experts, weights: [R][K] for this token.
    void add(int lang,
             uint32_t doc,
             int32_t passage,
             uint32_t position,
             uint32_t token,
             const uint16_t* experts,
             const float* weights);
    OwnedTrace finish();

private:
    void flush();
    OwnedTrace out_;
    int64_t chunk_tokens_;
    // The open chunk in token-major order ([n][R][K]), transposed to [R][n][K] on flush.
    OwnedChunk open_;
    std::vector<uint16_t> ex_;
    std::vector<float> w_;
};

struct SyntheticSpec {
    int E = 16, K = 2, R = 2;
    std::vector<int> layers;                    // model layer numbers; empty = 0..R-1
    std::vector<data::LanguageInfo> languages;  // empty = nL languages "l0", "l1", ...
    int nL = 3;
    int docs_per_lang = 20;
    int tokens_per_doc = 50;  // each document draws its length in [t/2, 3t/2]
    // Routing of language a at layer r, p_a[r] (probabilities over E), when lang_probs is empty:
    // p_a = normalise(base_r * exp(separation * z_a)), base_r = softmax(1.5 z), z standard normal.
    double separation = 0.0;
    std::vector<std::vector<double>> lang_probs;  // [nL][R * E], overrides the above
    double doc_noise = 0.3;                       // per-document log-probability noise (sd)
    double uniform_mix = 0.05;                    // mixed in uniformly over the language's support
    bool parallel = false;  // document i of every language carries passage id i
    int vocab_shared = 200, vocab_per_lang = 300;
    double shared_token_rate = 0.5;  // chance a token comes from the shared vocabulary
    uint64_t seed = 1;               // structure: documents, lengths, tokens
    uint64_t routing_seed = 1;       // routing draws (two traces of identical tokens differ here)
    int64_t chunk_tokens = 4096;
};

// The language distributions the generator uses, [nL][R * E] (lang_probs or the seeded ones).
std::vector<std::vector<double>> synthetic_lang_probs(const SyntheticSpec& spec);

OwnedTrace make_synthetic_trace(const SyntheticSpec& spec);

}  // namespace polymoe::analysis
