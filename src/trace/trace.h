// The routing trace in memory: a header (model shape, recorded layers, language table) and a list
// of chunks, each a column view of n tokens: per token its language, document, parallel passage,
// position and token id, and per recorded layer the top-k expert ids in rank order with their
// routing weights (optionally all E router logits). The file format that stores exactly these
// columns is in docs/formats.md; TraceReader memory-maps a file and hands out chunks pointing into
// the mapping, so analysis never copies a trace. Synthetic traces in tests build chunks over
// std::vectors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/language.h"

namespace polymoe::trace {

struct TraceHeader {
    int num_experts = 0;                        // E
    int top_k = 0;                              // K
    std::vector<int> layers;                    // model layer index of each recorded layer
    std::vector<data::LanguageInfo> languages;  // indexed by TraceChunk::lang
    int64_t num_documents = 0;                  // document ids are 0 .. num_documents-1
    bool has_logits = false;
    // Whether expert[..][0] is the top-1 expert (captured traces: always). Tables imported from
    // elsewhere may hold unordered top-k sets (e.g. sorted by id); every analysis statistic
    // treats a token's experts as a set, so this only informs readers.
    bool rank_ordered = true;
    std::string model;  // source checkpoint (path as given)
    std::string label;  // e.g. "base", "stage1"; defaults to the checkpoint's directory name
    std::string data;   // data source (manifest or shard directory) and split
    int num_layers() const { return static_cast<int>(layers.size()); }
};

// One chunk of n tokens. Every document's tokens are contiguous and in position order within a
// chunk, but a document may continue in the next chunk. Layer index r below is the r-th recorded
// layer (header.layers[r]), not the model layer number.
struct TraceChunk {
    int64_t n = 0;
    const uint16_t* lang = nullptr;      // [n] index into header.languages
    const uint32_t* doc = nullptr;       // [n] document id
    const int32_t* passage = nullptr;    // [n] parallel-passage id, -1 if none
    const uint32_t* position = nullptr;  // [n] position within the document (0-based)
    const uint32_t* token = nullptr;     // [n] token id
    const uint16_t* expert = nullptr;    // [R][n][K] top-k expert ids, rank order
    const float* weight = nullptr;       // [R][n][K] routing weights as applied by the MoE
    const float* logits = nullptr;       // [R][n][E] router logits, or nullptr

    const uint16_t* experts_at(int r, int64_t i, int K) const { return expert + (r * n + i) * K; }
    const float* weights_at(int r, int64_t i, int K) const { return weight + (r * n + i) * K; }
};

// A whole trace: the header plus its chunks (views stay valid while the owner lives).
struct TraceView {
    TraceHeader header;
    std::vector<TraceChunk> chunks;
    int64_t num_tokens() const {
        int64_t t = 0;
        for (const auto& c : chunks)
            t += c.n;
        return t;
    }
};

}  // namespace polymoe::trace
