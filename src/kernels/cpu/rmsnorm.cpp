// RMSNorm forward (see rmsnorm.h).
#include "kernels/cpu/rmsnorm.h"

#include <cmath>
#include <vector>

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

void rmsnorm_backward(float* dx,
                      float* dw,
                      const float* dy,
                      const float* x,
                      const float* w,
                      const float* rstd,
                      int64_t rows,
                      int64_t cols) {
    const int threads = num_threads();
    std::vector<double> partial(static_cast<size_t>(threads * cols), 0.0);
    parallel_for(rows, 8, [&](int64_t b, int64_t e, int tid) {
        double* dwp = partial.data() + static_cast<int64_t>(tid) * cols;
        for (int64_t r = b; r < e; ++r) {
            const float* xr = x + r * cols;
            const float* dyr = dy + r * cols;
            const double s = rstd[r];
            double dot = 0.0;  // sum over c of (w*dy) * xh
            for (int64_t c = 0; c < cols; ++c) {
                const double xh = xr[c] * s;
                dot += static_cast<double>(w[c]) * dyr[c] * xh;
                dwp[c] += dyr[c] * xh;
            }
            const double mean = dot / cols;
            for (int64_t c = 0; c < cols; ++c)
                dx[r * cols + c] =
                    static_cast<float>(s * (static_cast<double>(w[c]) * dyr[c] - xr[c] * s * mean));
        }
    });
    if (!dw) return;
    for (int64_t c = 0; c < cols; ++c) {
        double acc = 0.0;
        for (int t = 0; t < threads; ++t)
            acc += partial[static_cast<size_t>(t * cols + c)];
        dw[c] += static_cast<float>(acc);
    }
}

}  // namespace polymoe::kernels
