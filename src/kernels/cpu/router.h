// MoE router as HF OlmoeSparseMoeBlock: logits = gate(x) (a linear layer, no bias, computed by
// the caller), then per token row
//   p = softmax(logits) over ALL E experts in float32 (max-subtracted, double sum)
//   topk_idx = the K largest p in descending order (ties: lower expert id first)
//   topk_weight = p[topk_idx], divided by their sum only when norm_topk_prob (OLMoE: false)
//   margin = p_(K) - p_(K+1)  (p_(K) when K == E): how far the row is from a top-k flip
// Interventions (ablation): `allowed` [E] (null = all) restricts the top-k candidates; p stays
// the softmax over all E, so masking an expert no token picked changes nothing and masking all
// but a token's own top-k reproduces it exactly (the next-best experts take masked slots).
// Backward (top-k selection is piecewise constant and carries no gradient):
//   dp[e] = sum_r dw_r [idx_r = e] (+ dprobs[e] from the load-balancing loss), where with
//   norm_topk_prob dw is first mapped through w_r = p_r / sum_q p_q:
//   dp_(idx r) = (dw_r - sum_q dw_q w_q) / sum_q p_q
//   dlogits = p * (dp - sum_e p_e dp_e) + dlse * p        (d lse / d logits = p; assigned)
#pragma once

#include <cstdint>

namespace polymoe::kernels {

// probs: [T, E]; topk_idx: [T, K]; topk_weight: [T, K]; margin: [T] (may be null);
// lse (log-sum-exp of each row, for the z-loss; may be null): [T]; logits: [T, E];
// allowed: [E] 1 = may be selected (at least K must be), or null
void router_forward(float* probs,
                    int32_t* topk_idx,
                    float* topk_weight,
                    float* margin,
                    float* lse,
                    const float* logits,
                    int64_t T,
                    int64_t E,
                    int64_t K,
                    bool norm_topk_prob,
                    const uint8_t* allowed = nullptr);

// dlogits: [T, E] (assigned); dtopk_weight: [T, K]; dprobs: [T, E] or null; dlse: [T] or null;
// probs, topk_idx as written by router_forward.
void router_backward(float* dlogits,
                     const float* dtopk_weight,
                     const float* dprobs,
                     const float* dlse,
                     const float* probs,
                     const int32_t* topk_idx,
                     int64_t T,
                     int64_t E,
                     int64_t K,
                     bool norm_topk_prob);

}  // namespace polymoe::kernels
