// RMSNorm as in HF OlmoeRMSNorm, computed in float32 with a double sum of squares:
//   rstd = 1 / sqrt(mean(x^2) + eps),  y = w * (x * rstd)
// Used for the input / post-attention / final norms (width H) and for OLMoE's q/k norms, which
// normalise the FULL NH*HD (resp. KVH*HD) width of q (k), not each head separately.
// Backward (for the training issue), with xh = x * rstd and g = w * dy:
//   dx = rstd * (g - xh * mean(g * xh))        (assigned)
//   dw += sum over rows of dy * xh             (accumulated)
#pragma once

#include <cstdint>

namespace polymoe::kernels {

// y, x: [rows, cols] (y may alias x); w: [cols]; rstd (saved for backward, may be null): [rows]
void rmsnorm_forward(
    float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t cols, float eps);

// dx: [rows, cols] (assigned); dw: [cols] (accumulated); x, rstd as saved by rmsnorm_forward.
// Per-row terms in double; dw is reduced over rows in a fixed order (per-thread partial sums
// combined in thread order).
void rmsnorm_backward(float* dx,
                      float* dw,
                      const float* dy,
                      const float* x,
                      const float* w,
                      const float* rstd,
                      int64_t rows,
                      int64_t cols);

}  // namespace polymoe::kernels
