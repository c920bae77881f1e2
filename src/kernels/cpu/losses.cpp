// Cross-entropy and router losses (see losses.h).
#include "kernels/cpu/losses.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "kernels/cpu/fast_exp.h"

namespace polymoe::kernels {

namespace {

// The row's maximum (returned in *mx) and sum_j exp(z_j - mx) in double: the shared first pass
// of every cross-entropy kernel, so forward, backward and fused agree bit for bit.
double row_sum_exp(const float* z, int64_t V, float* mx) {
    float m = z[0];
    for (int64_t j = 1; j < V; ++j)
        m = std::max(m, z[j]);
    *mx = m;
    return sum_exp_shifted(z, V, m);
}

// d = scale * (softmax(z) - onehot(target)) from the row's first pass; d may alias z.
void row_softmax_grad(
    float* d, const float* z, int64_t V, float mx, double s, int32_t target, double scale) {
    const float inv = static_cast<float>(scale / s);
    for (int64_t j = 0; j < V; ++j)
        d[j] = exp_nonpositive(z[j] - mx) * inv;
    d[target] -= static_cast<float>(scale);
}

// Mean of the counted rows' losses, summed in row order (thread-count independent).
double mean_counted(const double* loss, const int32_t* targets, int64_t T, int64_t* counted) {
    double sum = 0.0;
    int64_t n = 0;
    for (int64_t t = 0; t < T; ++t) {
        if (targets[t] == -100) continue;
        sum += loss[t];
        ++n;
    }
    if (counted) *counted = n;
    return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

}  // namespace

double cross_entropy_forward(double* loss,
                             const float* logits,
                             const int32_t* targets,
                             int64_t T,
                             int64_t V,
                             int64_t* counted) {
    parallel_for(T, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            if (targets[t] == -100) {
                loss[t] = 0.0;
                continue;
            }
            const float* z = logits + t * V;
            float mx;
            const double s = row_sum_exp(z, V, &mx);
            loss[t] = mx + std::log(s) - static_cast<double>(z[targets[t]]);
        }
    });
    return mean_counted(loss, targets, T, counted);
}

void cross_entropy_backward(float* dlogits,
                            const float* logits,
                            const int32_t* targets,
                            int64_t T,
                            int64_t V,
                            double scale) {
    parallel_for(T, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            float* d = dlogits + t * V;
            if (targets[t] == -100) {
                std::fill(d, d + V, 0.0f);
                continue;
            }
            const float* z = logits + t * V;
            float mx;
            const double s = row_sum_exp(z, V, &mx);
            row_softmax_grad(d, z, V, mx, s, targets[t], scale);
        }
    });
}

double cross_entropy_fused(double* loss,
                           float* logits,
                           const int32_t* targets,
                           int64_t T,
                           int64_t V,
                           double scale,
                           int64_t* counted) {
    parallel_for(T, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            float* z = logits + t * V;
            if (targets[t] == -100) {
                loss[t] = 0.0;
                std::fill(z, z + V, 0.0f);
                continue;
            }
            float mx;
            const double s = row_sum_exp(z, V, &mx);
            loss[t] = mx + std::log(s) - static_cast<double>(z[targets[t]]);
            row_softmax_grad(z, z, V, mx, s, targets[t], scale);
        }
    });
    return mean_counted(loss, targets, T, counted);
}

RouterLossAccumulator::RouterLossAccumulator(int64_t L, int64_t E, int64_t K)
    : L_(L),
      E_(E),
      K_(K),
      rank_count_(K * E, 0.0),
      prob_sum_(E, 0.0),
      count_(L * E, 0.0),
      prob_layer_(L * E, 0.0) {}

void RouterLossAccumulator::add_layer(int64_t layer,
                                      const float* probs,
                                      const int32_t* topk_idx,
                                      const float* lse,
                                      const int32_t* mask,
                                      int64_t T) {
    T_ = T;
    for (int64_t t = 0; t < T; ++t) {
        const bool counted = !mask || mask[t] != 0;
        const float* p = probs + t * E_;
        for (int64_t e = 0; e < E_; ++e) {
            prob_layer_[layer * E_ + e] += p[e];
            if (counted) prob_sum_[e] += p[e];
        }
        for (int64_t r = 0; r < K_; ++r) {
            const int32_t e = topk_idx[t * K_ + r];
            count_[layer * E_ + e] += 1.0;
            if (counted) rank_count_[r * E_ + e] += 1.0;
        }
        masked_rows_ += counted ? 1.0 : 0.0;
        z_sum_ += static_cast<double>(lse[t]) * lse[t];
    }
}

RouterLosses RouterLossAccumulator::finalize(double coef) const {
    RouterLosses out;
    const double LT = static_cast<double>(L_) * static_cast<double>(T_);
    if (LT == 0) return out;
    if (masked_rows_ > 0) {
        double s = 0.0;
        for (int64_t r = 0; r < K_; ++r)
            for (int64_t e = 0; e < E_; ++e)
                s += (rank_count_[r * E_ + e] / masked_rows_) * (prob_sum_[e] / masked_rows_);
        out.aux = static_cast<double>(E_) * s;
    }
    out.z = z_sum_ / LT;
    double lb = 0.0;
    for (int64_t i = 0; i < L_ * E_; ++i)
        lb += count_[i] * (prob_layer_[i] / T_);
    out.megablocks_lb = coef * static_cast<double>(E_) / (LT * K_) * lb;
    out.megablocks_z = 0.001 * z_sum_ / (LT * K_);
    return out;
}

}  // namespace polymoe::kernels
