// Causal multi-head attention with grouped-query heads and an optional padding mask, as HF's
// eager attention: for query head h (kv head h / (NH / KVH)), position i of batch row b,
//   s_j = q_i · k_j / sqrt(HD)   for keys j <= i with mask[b, j] = 1
//   p   = softmax(s) (float32, max-subtracted, double sum),  out_i = sum_j p_j v_j
// Backward (probabilities recomputed, not saved), with dp_j = do_i · v_j:
//   ds_j = p_j (dp_j - sum_l p_l dp_l);  dq_i = scale sum_j ds_j k_j   (assigned)
//   dk_j = scale sum_i ds_j q_i;  dv_j = sum_i p_j do_i                 (assigned)
// Padded query rows are still computed (they see the unpadded keys before them). A row with no
// visible key (only possible with left padding) outputs zeros instead of HF's NaN/uniform.
#pragma once

#include <cstdint>

namespace polymoe::kernels {

// out: [B*S, NH*HD]; q: [B*S, NH*HD]; k, v: [B*S, KVH*HD]; mask: [B, S] (1 token, 0 pad) or null
void attention_forward(float* out,
                       const float* q,
                       const float* k,
                       const float* v,
                       const int32_t* mask,
                       int64_t B,
                       int64_t S,
                       int64_t NH,
                       int64_t KVH,
                       int64_t HD);

// dq: [B*S, NH*HD]; dk, dv: [B*S, KVH*HD] (all assigned); dout: [B*S, NH*HD]; other inputs as
// for attention_forward. Both run as GEMMs over blocks of query rows (see attention.cpp).
void attention_backward(float* dq,
                        float* dk,
                        float* dv,
                        const float* dout,
                        const float* q,
                        const float* k,
                        const float* v,
                        const int32_t* mask,
                        int64_t B,
                        int64_t S,
                        int64_t NH,
                        int64_t KVH,
                        int64_t HD);

}  // namespace polymoe::kernels
