// Embedding lookup (see embedding.h).
#include "kernels/cpu/embedding.h"

#include <cstring>

#include "core/parallel.h"

namespace polymoe::kernels {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t T, int64_t H) {
    parallel_for(T, 64, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t)
            std::memcpy(out + t * H, table + static_cast<int64_t>(ids[t]) * H,
                        static_cast<size_t>(H) * sizeof(float));
    });
}

void embedding_backward(
    float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t H, int64_t pad_id) {
    parallel_for(H, 64, [&](int64_t b, int64_t e, int) {
        for (int64_t t = 0; t < T; ++t) {
            if (ids[t] == pad_id) continue;
            float* row = dtable + static_cast<int64_t>(ids[t]) * H;
            for (int64_t c = b; c < e; ++c)
                row[c] += dout[t * H + c];
        }
    });
}

}  // namespace polymoe::kernels
