// exp() for softmax-style arguments (x <= 0, after subtracting a row maximum) in float, written
// as plain arithmetic so GCC vectorises it (AVX-512: 16 lanes) instead of calling libm's scalar
// exp per element, which dominated cross-entropy over a 50k vocabulary.
//
// Method: x = n·ln2 + r with n = round(x·log2 e) (the 1.5·2^23 shift trick, exact under
// round-to-nearest; no -ffast-math anywhere, so the compiler may not fold it away), ln2 split
// into hi + lo (Cody–Waite) so r is exact to ~1e-10, e^r by its degree-7 Taylor polynomial
// (|r| <= ln2/2: truncation < 2e-9), and 2^n added to the exponent bits. Inputs below -87 are
// clamped (e^-87 ~ 1.6e-38, the normal-float floor), so the result is never denormal. Relative
// error < 3e-7 (kernels_test FastExp checks it against std::exp in double).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace polymoe::kernels {

inline float exp_nonpositive(float x) {
    x = std::max(x, -87.0f);
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
    constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.428606765330187e-06f;
    const float shifted = x * kLog2e + kShift;
    const float n = shifted - kShift;
    const int32_t ni = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kShift);
    const float r = (x - n * kLn2Hi) - n * kLn2Lo;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return std::bit_cast<float>(std::bit_cast<int32_t>(p) + (ni << 23));
}

// sum_j exp(z[j] - mx) for z[j] <= mx: float lanes over blocks of 256, blocks summed in double.
inline double sum_exp_shifted(const float* z, int64_t n, float mx) {
    double total = 0.0;
    for (int64_t b = 0; b < n; b += 256) {
        const int64_t e = std::min<int64_t>(n, b + 256);
        float s = 0.0f;
        for (int64_t j = b; j < e; ++j)
            s += exp_nonpositive(z[j] - mx);
        total += s;
    }
    return total;
}

}  // namespace polymoe::kernels
