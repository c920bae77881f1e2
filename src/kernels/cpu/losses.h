// Losses of the forward pass (DESIGN.md "Exact loss definitions"), T token rows, L layers,
// E experts, K = num_experts_per_tok, p = softmax of a row's router logits:
//   ce  = mean over rows with target != -100 of  lse(logits_t) - logits_t[target_t]
//   aux = E * sum_j sum_e f[j,e] * P[e]   (HF load_balancing_loss_func, layers pooled along
//         rows; f[j,e] = share of rows whose rank-j choice is e, P[e] = mean p; both means over
//         non-padding rows when a mask is given)
//   z   = mean over layers and rows of lse(router_logits)^2          (ST-MoE router z-loss)
//   megablocks_lb = coef * E / (L*T*K) * sum_l sum_e count[l,e] * P[l,e]   (all rows)
//   megablocks_z  = 0.001 * sum_l sum_t lse[l,t]^2 / (L*T*K)              (all rows)
//   hf_total = ce + coef * aux,  olmoe_total = ce + megablocks_lb + megablocks_z
// Sums run in double in a fixed order, so results are independent of the thread count.
// Over several micro-batches (gradient accumulation, MPI ranks) lb and aux are products of batch
// statistics, so the loss of the union is not the mean of the parts. lb_scope global
// (train/step_grad.h) first sums the top-k counts, router-probability sums and row counts over
// all micro-batches (subscript g); the counts carry no gradient, so for every row t of every
// micro-batch d megablocks_lb / d p[l,t,e] = coef E / (L T_g K) * count_g[l,e] / T_g and, for
// non-padding rows, d (coef aux) / d p[l,t,e] = coef E F_g[e] / R_g^2 (F_g: top-k slots of
// non-padding rows, layers pooled; R_g: non-padding rows times L). model::LossNorm applies them.
#pragma once

#include <cstdint>
#include <vector>

namespace polymoe::kernels {

// Per-row cross-entropy in double: loss[t] = lse(logits[t]) - logits[t, target[t]], 0 where
// target[t] == -100. logits: [T, V]; targets: [T]. Returns the mean over counted rows (0 if none)
// and the number of counted rows in *counted.
double cross_entropy_forward(double* loss,
                             const float* logits,
                             const int32_t* targets,
                             int64_t T,
                             int64_t V,
                             int64_t* counted);

// dlogits[t] = scale * (softmax(logits[t]) - onehot(target[t])), 0 for ignored rows (assigned);
// scale = dloss / counted rows for the mean. logits: [T, V]; targets: [T].
void cross_entropy_backward(float* dlogits,
                            const float* logits,
                            const int32_t* targets,
                            int64_t T,
                            int64_t V,
                            double scale);

// Both at once for a chunk of rows whose logits are not needed afterwards (the training head):
// loss[t] as cross_entropy_forward, then logits[t] overwritten by cross_entropy_backward's
// dlogits[t]; one max/exp-sum pass per row serves both, and the results equal the two separate
// kernels bit for bit. Returns the mean over counted rows.
double cross_entropy_fused(double* loss,
                           float* logits,
                           const int32_t* targets,
                           int64_t T,
                           int64_t V,
                           double scale,
                           int64_t* counted);

struct RouterLosses {
    double aux = 0, z = 0, megablocks_lb = 0, megablocks_z = 0;
};

// Accumulates the router statistics of every layer, then turns them into the losses.
class RouterLossAccumulator {
public:
    RouterLossAccumulator(int64_t L, int64_t E, int64_t K);
    // probs: [T, E]; topk_idx: [T, K]; lse: [T]; mask: [T] (1 token / 0 pad) or null.
    void add_layer(int64_t layer,
                   const float* probs,
                   const int32_t* topk_idx,
                   const float* lse,
                   const int32_t* mask,
                   int64_t T);
    RouterLosses finalize(double router_aux_loss_coef) const;

private:
    int64_t L_, E_, K_, T_ = 0;
    std::vector<double> rank_count_;  // [K, E] masked rows, layers pooled
    std::vector<double> prob_sum_;    // [E] masked rows, layers pooled
    double masked_rows_ = 0;
    std::vector<double> count_;       // [L, E] top-k slots, all rows
    std::vector<double> prob_layer_;  // [L, E] sum of p, all rows
    double z_sum_ = 0;
};

}  // namespace polymoe::kernels
