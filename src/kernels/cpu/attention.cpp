// Causal GQA attention forward (see attention.h). Parallel over (batch, head, query) rows; each
// row's softmax and weighted sum run in a fixed order, so results do not depend on threads.
#include "kernels/cpu/attention.h"

#include <cmath>
#include <vector>

#include "core/parallel.h"

namespace polymoe::kernels {

namespace {

// q·k with 16 independent partial sums reduced in a fixed order: vectorisable without
// -ffast-math (a single running sum is a serial dependency chain), and deterministic.
inline float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
    constexpr int64_t kLanes = 16;
    float acc[kLanes] = {};
    int64_t c = 0;
    for (; c + kLanes <= n; c += kLanes)
        for (int64_t l = 0; l < kLanes; ++l)
            acc[l] += a[c + l] * b[c + l];
    for (; c < n; ++c)
        acc[c % kLanes] += a[c] * b[c];
    for (int64_t w = kLanes / 2; w > 0; w /= 2)
        for (int64_t l = 0; l < w; ++l)
            acc[l] += acc[l + w];
    return acc[0];
}

// Softmax numerators exp(s_j - max) of query row i over keys j <= i into p (0 for masked keys;
// mrow: this batch row's mask or null). Returns 1 / sum, or 0 when no key is visible. Shared by
// forward and backward so the backward recomputes exactly the forward's probabilities.
float row_softmax(float* p,
                  const float* qi,
                  const float* kb,
                  int64_t kw,
                  const int32_t* mrow,
                  int64_t i,
                  int64_t HD,
                  float scale) {
    float mx = -INFINITY;
    for (int64_t j = 0; j <= i; ++j) {
        if (mrow && mrow[j] == 0) {
            p[j] = -INFINITY;
            continue;
        }
        p[j] = dot(qi, kb + j * kw, HD) * scale;
        mx = std::max(mx, p[j]);
    }
    if (mx == -INFINITY) return 0.0f;
    double sum = 0.0;
    for (int64_t j = 0; j <= i; ++j) {
        p[j] = p[j] == -INFINITY ? 0.0f : std::exp(p[j] - mx);
        sum += p[j];
    }
    return static_cast<float>(1.0 / sum);
}

}  // namespace

void attention_forward(float* out,
                       const float* q,
                       const float* k,
                       const float* v,
                       const int32_t* mask,
                       int64_t B,
                       int64_t S,
                       int64_t NH,
                       int64_t KVH,
                       int64_t HD) {
    const int64_t group = NH / KVH, qw = NH * HD, kw = KVH * HD;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(HD)));
    parallel_for(B * NH * S, 4, [&](int64_t begin, int64_t end, int) {
        std::vector<float> p(static_cast<size_t>(S));
        std::vector<float> acc(static_cast<size_t>(HD));
        for (int64_t job = begin; job < end; ++job) {
            const int64_t i = job % S, h = (job / S) % NH, b = job / (S * NH);
            const float* qi = q + (b * S + i) * qw + h * HD;
            const float* kb = k + b * S * kw + (h / group) * HD;
            const float* vb = v + b * S * kw + (h / group) * HD;
            float* o = out + (b * S + i) * qw + h * HD;
            const float inv =
                row_softmax(p.data(), qi, kb, kw, mask ? mask + b * S : nullptr, i, HD, scale);
            if (inv == 0.0f) {
                for (int64_t c = 0; c < HD; ++c)
                    o[c] = 0.0f;
                continue;
            }
            for (int64_t c = 0; c < HD; ++c)
                acc[c] = 0.0f;
            for (int64_t j = 0; j <= i; ++j) {
                if (p[j] == 0.0f) continue;
                const float pj = p[j] * inv;
                const float* vj = vb + j * kw;
                for (int64_t c = 0; c < HD; ++c)
                    acc[c] += pj * vj[c];
            }
            for (int64_t c = 0; c < HD; ++c)
                o[c] = acc[c];
        }
    });
}

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
                        int64_t HD) {
    const int64_t group = NH / KVH, qw = NH * HD, kw = KVH * HD;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(HD)));
    parallel_for(B * KVH, 1, [&](int64_t begin, int64_t end, int) {
        std::vector<float> p(static_cast<size_t>(S)), dp(static_cast<size_t>(S));
        for (int64_t job = begin; job < end; ++job) {
            const int64_t b = job / KVH, g = job % KVH;
            float* dkb = dk + b * S * kw + g * HD;
            float* dvb = dv + b * S * kw + g * HD;
            const float* kb = k + b * S * kw + g * HD;
            const float* vb = v + b * S * kw + g * HD;
            for (int64_t j = 0; j < S; ++j)
                for (int64_t c = 0; c < HD; ++c)
                    dkb[j * kw + c] = dvb[j * kw + c] = 0.0f;
            for (int64_t h = g * group; h < (g + 1) * group; ++h) {
                for (int64_t i = 0; i < S; ++i) {
                    const float* qi = q + (b * S + i) * qw + h * HD;
                    const float* doi = dout + (b * S + i) * qw + h * HD;
                    float* dqi = dq + (b * S + i) * qw + h * HD;
                    // Recompute this row's softmax exactly as the forward does.
                    for (int64_t c = 0; c < HD; ++c)
                        dqi[c] = 0.0f;
                    const float inv = row_softmax(p.data(), qi, kb, kw,
                                                  mask ? mask + b * S : nullptr, i, HD, scale);
                    if (inv == 0.0f) continue;
                    double pdp = 0.0;
                    for (int64_t j = 0; j <= i; ++j) {
                        p[j] *= inv;
                        dp[j] = p[j] == 0.0f ? 0.0f : dot(doi, vb + j * kw, HD);
                        pdp += static_cast<double>(p[j]) * dp[j];
                    }
                    for (int64_t j = 0; j <= i; ++j) {
                        if (p[j] == 0.0f) continue;
                        const float ds = p[j] * (dp[j] - static_cast<float>(pdp)) * scale;
                        const float* kj = kb + j * kw;
                        float* dkj = dkb + j * kw;
                        float* dvj = dvb + j * kw;
                        for (int64_t c = 0; c < HD; ++c) {
                            dqi[c] += ds * kj[c];
                            dkj[c] += ds * qi[c];
                            dvj[c] += p[j] * doi[c];
                        }
                    }
                }
            }
        }
    });
}

}  // namespace polymoe::kernels
