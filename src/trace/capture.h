// Routing capture: runs the production forward (no gradients, no lm head, nothing above the
// deepest recorded layer's router) over the documents of a prepared corpus and records, through the
// ForwardObserver hook, every real token's top-k experts and routing weights per layer (optionally
// all router logits) into a trace file.
//
// Documents are cut into windows of at most `seq` tokens (each window is a fresh context; the
// trace's position is still the position in the document), windows of one language are taken in
// document order and batched `batch` rows at a time, right-padded to the longest window of the
// batch with an attention mask, so padding never changes a real token's routing. Languages are
// traced in the prepared directory's order; document ids are numbered across the whole trace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/observer.h"
#include "model/params.h"
#include "trace/trace_file.h"

namespace polymoe::trace {

// One forward's routing, kept for the rows' real tokens: the ForwardObserver that capture_trace
// (and `polymoe bench trace`) runs the forward with. layer_slot[l]: the chunk's row for model
// layer l, or -1 when the layer is not recorded.
class RoutingRecorder final : public model::ForwardObserver {
public:
    RoutingRecorder(const std::vector<int>& layer_slot, int K, int E, bool logits)
        : slot_(layer_slot), K_(K), E_(E), logits_(logits) {}
    // Indices (into the [B*S] batch) of the tokens to keep, set before each forward.
    std::vector<int64_t> keep;
    ChunkBuffer* out = nullptr;

    void on_router(int layer,
                   int64_t,
                   int64_t,
                   int64_t,
                   const float* logits,
                   const float*,
                   const int32_t* topk_idx,
                   const float* topk_weight,
                   const float*) override;
    // The deepest recorded layer: the capture needs nothing above its router.
    int last_router_needed() const override;

private:
    std::vector<int> slot_;
    int K_, E_;
    bool logits_;
};

struct CaptureOptions {
    std::string split = "heldout";
    std::vector<std::string> languages;  // empty: all in the prepared directory
    int64_t max_tokens = 0;              // per language; 0 = all
    int64_t batch = 8, seq = 512;
    bool logits = false;
    std::vector<int> layers;  // model layers to record; empty = all
    int64_t chunk_tokens = 1 << 16;
    std::string label;  // header label (default: the model directory's name)
};

struct CaptureResult {
    int64_t tokens = 0, documents = 0;
    double seconds = 0;
};

CaptureResult capture_trace(const model::OlmoeWeights& w,
                            const std::string& model_dir,
                            const std::string& prepared_dir,
                            const CaptureOptions& o,
                            const std::string& out_path);

}  // namespace polymoe::trace
