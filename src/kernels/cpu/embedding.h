// Token embedding lookup: out[t, :] = table[ids[t], :]. Ids are validated by the caller
// (0 <= id < V). Backward (training): dtable[ids[t]] += dout[t], except the pad row (HF
// padding_idx), accumulated in token order for determinism.
#pragma once

#include <cstdint>

namespace polymoe::kernels {

// out: [T, H]; ids: [T]; table: [V, H]
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t T, int64_t H);

}  // namespace polymoe::kernels
