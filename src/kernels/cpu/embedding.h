// Token embedding lookup: out[t, :] = table[ids[t], :]. Ids are validated by the caller
// (0 <= id < V). Backward (training): dtable[ids[t]] += dout[t], except the pad row (HF
// padding_idx), accumulated in token order for determinism.
#pragma once

#include <cstdint>

namespace polymoe::kernels {

// out: [T, H]; ids: [T]; table: [V, H]
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t T, int64_t H);

// dtable: [V, H] (accumulated); dout: [T, H]; rows of `pad_id` (if >= 0) get nothing. Threads
// split the H columns, each walking the tokens in order: deterministic, no atomics.
void embedding_backward(
    float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t H, int64_t pad_id);

}  // namespace polymoe::kernels
