// Router softmax + top-k (see router.h).
#include "kernels/cpu/router.h"

#include <cmath>
#include <vector>

#include "core/parallel.h"

namespace polymoe::kernels {

void router_forward(float* probs,
                    int32_t* topk_idx,
                    float* topk_weight,
                    float* margin,
                    float* lse,
                    const float* logits,
                    int64_t T,
                    int64_t E,
                    int64_t K,
                    bool norm_topk_prob,
                    const uint8_t* allowed) {
    parallel_for(T, 16, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            const float* z = logits + t * E;
            float* p = probs + t * E;
            float mx = z[0];
            for (int64_t j = 1; j < E; ++j)
                mx = std::max(mx, z[j]);
            double sum = 0.0;
            for (int64_t j = 0; j < E; ++j)
                sum += std::exp(static_cast<double>(z[j]) - mx);
            for (int64_t j = 0; j < E; ++j)
                p[j] = static_cast<float>(std::exp(static_cast<double>(z[j]) - mx) / sum);
            if (lse) lse[t] = static_cast<float>(mx + std::log(sum));
            // Selection of the K (+1 for the margin) largest, descending, lower id wins ties.
            int32_t* idx = topk_idx + t * K;
            float next = 0.0f;
            for (int64_t r = 0; r <= K && r < E; ++r) {
                int64_t best = -1;
                for (int64_t j = 0; j < E; ++j) {
                    bool taken = false;
                    for (int64_t q = 0; q < r && q < K; ++q)
                        taken |= idx[q] == j;
                    if (taken || (allowed && !allowed[j])) continue;
                    if (best < 0 || p[j] > p[best]) best = j;
                }
                if (r < K)
                    idx[r] = static_cast<int32_t>(best);  // callers allow at least K experts
                else
                    next = best >= 0 ? p[best] : 0.0f;
            }
            float* w = topk_weight + t * K;
            double wsum = 0.0;
            for (int64_t r = 0; r < K; ++r) {
                w[r] = p[idx[r]];
                wsum += w[r];
            }
            if (norm_topk_prob)
                for (int64_t r = 0; r < K; ++r)
                    w[r] = static_cast<float>(w[r] / wsum);
            if (margin) margin[t] = p[idx[K - 1]] - (K < E ? next : 0.0f);
        }
    });
}

void router_backward(float* dlogits,
                     const float* dtopk_weight,
                     const float* dprobs,
                     const float* dlse,
                     const float* probs,
                     const int32_t* topk_idx,
                     int64_t T,
                     int64_t E,
                     int64_t K,
                     bool norm_topk_prob) {
    parallel_for(T, 16, [&](int64_t b, int64_t e, int) {
        std::vector<double> dp(static_cast<size_t>(E));
        for (int64_t t = b; t < e; ++t) {
            const float* p = probs + t * E;
            const int32_t* idx = topk_idx + t * K;
            const float* dw = dtopk_weight + t * K;
            for (int64_t j = 0; j < E; ++j)
                dp[j] = dprobs ? dprobs[t * E + j] : 0.0;
            if (norm_topk_prob) {
                double sum = 0.0, dot = 0.0;
                for (int64_t r = 0; r < K; ++r)
                    sum += p[idx[r]];
                for (int64_t r = 0; r < K; ++r)
                    dot += dw[r] * (p[idx[r]] / sum);
                for (int64_t r = 0; r < K; ++r)
                    dp[idx[r]] += (dw[r] - dot) / sum;
            } else {
                for (int64_t r = 0; r < K; ++r)
                    dp[idx[r]] += dw[r];
            }
            double pdp = 0.0;
            for (int64_t j = 0; j < E; ++j)
                pdp += p[j] * dp[j];
            const double g = dlse ? dlse[t] : 0.0;
            for (int64_t j = 0; j < E; ++j)
                dlogits[t * E + j] = static_cast<float>(p[j] * (dp[j] - pdp + g));
        }
    });
}

}  // namespace polymoe::kernels
