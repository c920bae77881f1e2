// Rotate-half RoPE (see rope.h).
#include "kernels/cpu/rope.h"

#include <cmath>

#include "core/parallel.h"

namespace polymoe::kernels {

RopeTable rope_table(int64_t S, int64_t HD, double theta) {
    RopeTable t;
    t.S = S;
    t.half = HD / 2;
    t.cos.resize(static_cast<size_t>(S * t.half));
    t.sin.resize(t.cos.size());
    for (int64_t p = 0; p < S; ++p) {
        for (int64_t i = 0; i < t.half; ++i) {
            const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / HD);
            const double a = static_cast<double>(p) * inv_freq;
            t.cos[p * t.half + i] = static_cast<float>(std::cos(a));
            t.sin[p * t.half + i] = static_cast<float>(std::sin(a));
        }
    }
    return t;
}

void rope_forward(float* x, const RopeTable& tab, int64_t B, int64_t S, int64_t heads, int64_t HD) {
    const int64_t half = HD / 2;
    parallel_for(B * S, 16, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            const float* c = tab.cos.data() + (t % S) * half;
            const float* s = tab.sin.data() + (t % S) * half;
            for (int64_t h = 0; h < heads; ++h) {
                float* v = x + t * heads * HD + h * HD;
                for (int64_t i = 0; i < half; ++i) {
                    const float x1 = v[i], x2 = v[i + half];
                    v[i] = x1 * c[i] - x2 * s[i];
                    v[i + half] = x2 * c[i] + x1 * s[i];
                }
            }
        }
    });
}

void rope_backward(
    float* dx, const RopeTable& tab, int64_t B, int64_t S, int64_t heads, int64_t HD) {
    const int64_t half = HD / 2;
    parallel_for(B * S, 16, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            const float* c = tab.cos.data() + (t % S) * half;
            const float* s = tab.sin.data() + (t % S) * half;
            for (int64_t h = 0; h < heads; ++h) {
                float* v = dx + t * heads * HD + h * HD;
                for (int64_t i = 0; i < half; ++i) {
                    const float g1 = v[i], g2 = v[i + half];
                    v[i] = g1 * c[i] + g2 * s[i];
                    v[i + half] = g2 * c[i] - g1 * s[i];
                }
            }
        }
    });
}

}  // namespace polymoe::kernels
