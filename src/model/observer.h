// ForwardObserver: an opt-in hook into the one production forward (gemma.cpp's kObserver,
// llama.cpp's cb_eval). Null by default, so inference pays nothing; the forward CLI uses it to
// dump router tensors, later the routing trace uses it to record routing.
#pragma once

#include <cstdint>

namespace polymoe::model {

class ForwardObserver {
public:
    virtual ~ForwardObserver() = default;
    // After the router of `layer`: logits, probs: [T, E]; topk_idx, topk_weight: [T, K];
    // margin: [T] (p_(K) - p_(K+1)).
    virtual void on_router(int layer,
                           int64_t T,
                           int64_t E,
                           int64_t K,
                           const float* logits,
                           const float* probs,
                           const int32_t* topk_idx,
                           const float* topk_weight,
                           const float* margin) {
        (void)layer, (void)T, (void)E, (void)K, (void)logits, (void)probs, (void)topk_idx,
            (void)topk_weight, (void)margin;
    }
    // The residual stream after `layer`: x: [T, H].
    virtual void on_hidden(int layer, int64_t T, int64_t H, const float* x) {
        (void)layer, (void)T, (void)H, (void)x;
    }
    // For an observer that needs router outputs only: the deepest layer whose on_router it needs,
    // or -1 (the default) when it needs the whole forward. A layer's routing depends only on the
    // layers below it and its own attention block, so an inference forward without logits then
    // runs layers 0..n-1 whole, layer n up to its router (its experts, which only feed the layers
    // above and the lm head, are skipped) and nothing above n; on_hidden is called for layers
    // below n only, and the router losses it returns cover layers 0..n.
    virtual int last_router_needed() const { return -1; }
};

}  // namespace polymoe::model
