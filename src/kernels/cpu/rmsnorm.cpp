// RMSNorm forward (see rmsnorm.h).
#include "kernels/cpu/rmsnorm.h"

#include <cmath>

#include "core/parallel.h"

namespace polymoe::kernels {

void rmsnorm_forward(
    float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t cols, float eps) {
    parallel_for(rows, 8, [&](int64_t b, int64_t e, int) {
        for (int64_t r = b; r < e; ++r) {
            const float* xr = x + r * cols;
            float* yr = y + r * cols;
            double ss = 0.0;
            for (int64_t c = 0; c < cols; ++c)
                ss += static_cast<double>(xr[c]) * xr[c];
            // rsqrt in double then rounded: the value HF's float32 rsqrt approximates.
            const float s = static_cast<float>(1.0 / std::sqrt(ss / cols + eps));
            if (rstd) rstd[r] = s;
            for (int64_t c = 0; c < cols; ++c)
                yr[c] = w[c] * (xr[c] * s);
        }
    });
}

}  // namespace polymoe::kernels
