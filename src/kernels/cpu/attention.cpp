// Causal GQA attention forward and backward (see attention.h) as GEMMs over blocks of query rows.
// For one (batch row b, head h) and query block [i0, i1), only keys j < i1 can be visible, so
//   scores[i1 - i0, i1] = q[i0:i1] · k[0:i1]^T         (gemm on the strided head slices)
//   p = causal, masked softmax of scale * scores        (rows in parallel, fixed order)
//   out[i0:i1] = p · v[0:i1]
// and backward recomputes p the same way, then
//   dp = dout[i0:i1] · v[0:i1]^T;  ds = p (dp - sum_l p_l dp_l) scale
//   dq[i0:i1] = ds · k[0:i1];  dk[0:i1] += ds^T · q[i0:i1];  dv[0:i1] += p^T · dout[i0:i1]
// The GEMMs (oneDNN, parallel inside) run one after another in a fixed order; the row loops are
// split statically. Results therefore depend only on the thread count, not on timing. Blocks of
// kQueryBlock rows bound the score buffer (kQueryBlock x S floats) and skip most of the masked
// upper triangle.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/fast_exp.h"
#include "kernels/cpu/matmul.h"

namespace polymoe::kernels {

namespace {

constexpr int64_t kQueryBlock = 128;

// Turns raw scores s[r, 0:n_keys] (row r is query i0 + r) into probabilities in place: keys
// j <= i with mask[j] = 1 get exp(scale s_j - max) / sum (sum in double), every other entry 0.
// A row with no visible key becomes all zeros (its output is zero, as attention.h states).
void softmax_rows(
    float* s, int64_t rows, int64_t n_keys, int64_t i0, const int32_t* mrow, float scale) {
    parallel_for(rows, 8, [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
            float* p = s + r * n_keys;
            const int64_t last = i0 + r;  // keys 0..last are causal-visible
            float mx = -INFINITY;
            for (int64_t j = 0; j <= last; ++j) {
                p[j] = (mrow && mrow[j] == 0) ? -INFINITY : p[j] * scale;
                mx = std::max(mx, p[j]);
            }
            if (mx == -INFINITY) {
                std::fill(p, p + n_keys, 0.0f);
                continue;
            }
            double sum = 0.0;
            for (int64_t j = 0; j <= last; ++j) {
                p[j] = p[j] == -INFINITY ? 0.0f : exp_nonpositive(p[j] - mx);
                sum += p[j];
            }
            const auto inv = static_cast<float>(1.0 / sum);
            for (int64_t j = 0; j <= last; ++j)
                p[j] *= inv;
            std::fill(p + last + 1, p + n_keys, 0.0f);
        }
    });
}

// Probabilities of query rows [i0, i1) of one head over keys [0, i1) into p ([i1 - i0, i1]).
void block_probs(float* p,
                 const float* qh,
                 const float* kh,
                 const int32_t* mrow,
                 int64_t i0,
                 int64_t i1,
                 int64_t qw,
                 int64_t kw,
                 int64_t HD,
                 float scale) {
    const int64_t n = i1 - i0;
    gemm(p, i1, qh + i0 * qw, qw, false, kh, kw, true, n, i1, HD, false);
    softmax_rows(p, n, i1, i0, mrow, scale);
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
    std::vector<float> p(static_cast<size_t>(std::min(S, kQueryBlock) * S));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < NH; ++h) {
            const float* qh = q + b * S * qw + h * HD;
            const float* kh = k + b * S * kw + (h / group) * HD;
            const float* vh = v + b * S * kw + (h / group) * HD;
            float* oh = out + b * S * qw + h * HD;
            const int32_t* mrow = mask ? mask + b * S : nullptr;
            for (int64_t i0 = 0; i0 < S; i0 += kQueryBlock) {
                const int64_t i1 = std::min(S, i0 + kQueryBlock), n = i1 - i0;
                block_probs(p.data(), qh, kh, mrow, i0, i1, qw, kw, HD, scale);
                gemm(oh + i0 * qw, qw, p.data(), i1, false, vh, kw, false, n, HD, i1, false);
            }
        }
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
    const size_t block = static_cast<size_t>(std::min(S, kQueryBlock) * S);
    std::vector<float> p(block), ds(block);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t g = 0; g < KVH; ++g) {
            const float* kh = k + b * S * kw + g * HD;
            const float* vh = v + b * S * kw + g * HD;
            float* dkh = dk + b * S * kw + g * HD;
            float* dvh = dv + b * S * kw + g * HD;
            const int32_t* mrow = mask ? mask + b * S : nullptr;
            for (int64_t j = 0; j < S; ++j)
                for (int64_t c = 0; c < HD; ++c)
                    dkh[j * kw + c] = dvh[j * kw + c] = 0.0f;
            for (int64_t h = g * group; h < (g + 1) * group; ++h) {
                const float* qh = q + b * S * qw + h * HD;
                const float* doh = dout + b * S * qw + h * HD;
                float* dqh = dq + b * S * qw + h * HD;
                for (int64_t i0 = 0; i0 < S; i0 += kQueryBlock) {
                    const int64_t i1 = std::min(S, i0 + kQueryBlock), n = i1 - i0;
                    block_probs(p.data(), qh, kh, mrow, i0, i1, qw, kw, HD, scale);
                    gemm(ds.data(), i1, doh + i0 * qw, qw, false, vh, kw, true, n, i1, HD, false);
                    parallel_for(n, 8, [&](int64_t begin, int64_t end, int) {
                        for (int64_t r = begin; r < end; ++r) {
                            const float* pr = p.data() + r * i1;
                            float* dr = ds.data() + r * i1;
                            double pdp = 0.0;
                            for (int64_t j = 0; j < i1; ++j)
                                pdp += static_cast<double>(pr[j]) * dr[j];
                            const auto c = static_cast<float>(pdp);
                            for (int64_t j = 0; j < i1; ++j)
                                dr[j] = pr[j] == 0.0f ? 0.0f : pr[j] * (dr[j] - c) * scale;
                        }
                    });
                    gemm(dqh + i0 * qw, qw, ds.data(), i1, false, kh, kw, false, n, HD, i1, false);
                    gemm(dkh, kw, ds.data(), i1, true, qh + i0 * qw, qw, false, i1, HD, n, true);
                    gemm(dvh, kw, p.data(), i1, true, doh + i0 * qw, qw, false, i1, HD, n, true);
                }
            }
        }
}

}  // namespace polymoe::kernels
