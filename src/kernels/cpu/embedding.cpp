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

}  // namespace polymoe::kernels
