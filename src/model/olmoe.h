// The OLMoE forward pass (HF OlmoeForCausalLM), the front door of the model stage. One layer:
//   x += o_proj(attn(rope(clip(q_norm(q_proj(rms(x))))), rope(clip(k_norm(k_proj(rms(x))))),
//                    clip(v_proj(rms(x)))))
//   x += moe(rms(x))
// then logits = lm_head(rms(x)) and the losses of kernels/cpu/losses.h. Activations are
// allocated once for a (B, S) by an explicit call and reused across calls.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/moe.h"
#include "kernels/cpu/rope.h"
#include "model/intervention.h"
#include "model/observer.h"
#include "model/params.h"

namespace polymoe::model {

// What backward needs from one layer's forward (only filled when training).
struct LayerSaved {
    std::vector<float> x_in, x_mid;     // [T, H] residual entering the layer / after attention
    std::vector<float> rstd1, rstd2;    // [T] input / post-attention norm
    std::vector<float> q_lin, k_lin;    // [T, NH*HD], [T, KVH*HD] projections before q/k norm
    std::vector<float> q_rstd, k_rstd;  // [T]
    std::vector<float> qn, kn, v_lin;   // q/k after norm, v before clipping (clip masks)
    std::vector<float> q, k, v;         // attention inputs (after clip and RoPE)
    std::vector<float> att;             // [T, NH*HD]
    std::vector<float> h2;              // [T, H] MoE input
    std::vector<float> probs, topk_weight, lse;
    std::vector<int32_t> topk_idx;
    kernels::MoeWorkspace moe;
};

// The training head computes logits for at most this many bytes of rows at a time (64 MiB: 333
// rows of OLMoE's 50,304-entry vocabulary, against 412 MB for a full 8 x 256 batch).
inline constexpr int64_t kHeadChunkBytes = int64_t{64} << 20;

// Scratch of the training backward (gradients of activations), kept across steps so that the
// step loop does not allocate: fresh multi-megabyte buffers every step cost page faults and
// zeroing (about a tenth of a tiny training step before they were kept).
struct BackwardBuffers {
    std::vector<float> rstd_f, dh, dx, tmp, dh2, dtw, drl, datt, dq, dk, dv, g, h;
    std::vector<std::vector<float>> dprobs, dlse;  // [L][T, E], [L][T] router-loss gradients
};

// Buffers for one forward of shape (B, S); T = B * S.
struct Activations {
    int64_t B = 0, S = 0;
    std::vector<float> x;              // [T, H] residual stream
    std::vector<float> h;              // [T, H] normed input of attention / MoE
    std::vector<float> q, att;         // [T, NH*HD]
    std::vector<float> k, v;           // [T, KVH*HD]
    std::vector<float> tmp;            // [T, H] block output before the residual add
    std::vector<float> router_logits;  // [T, E]
    std::vector<float> probs;          // [T, E]
    std::vector<int32_t> topk_idx;     // [T, K]
    std::vector<float> topk_weight;    // [T, K]
    std::vector<float> margin, lse;    // [T]
    std::vector<float> logits;         // [T, V] (only when requested; never when training)
    int64_t head_rows = 0;             // training: rows per lm-head chunk
    std::vector<float> head_chunk;     // training: [head_rows, V] logits, then their gradient
    std::vector<double> ce_rows;       // [T]
    std::vector<int32_t> targets;      // [T] shifted labels, -100 ignored
    kernels::MoeWorkspace moe;
    kernels::RopeTable rope;
    bool train = false;             // save per-layer tensors for backward
    std::vector<LayerSaved> saved;  // [L] when train
    // Activation recomputation (training): the forward keeps only each layer's input, top-k
    // choices and router lse; backward re-runs one layer at a time into `recomputed`. Saves
    // (L - 1) layers of activations for one extra forward of the layers (not of the head).
    bool recompute = false;
    LayerSaved recomputed;
    BackwardBuffers back;
};

// Allocates (or re-allocates for a new shape) the buffers of `a`; `train` keeps what
// olmoe_forward_backward needs instead of logits (`logits` is ignored).
void allocate_activations(
    Activations& a, const OlmoeConfig& c, int64_t B, int64_t S, bool logits, bool train = false);

struct ForwardResult {
    double ce = 0, aux = 0, z = 0, megablocks_lb = 0, megablocks_z = 0;
    double hf_total = 0, olmoe_total = 0;
    int64_t ce_tokens = 0;  // rows counted in ce
};

// ids: [B, S]; mask: [B, S] (1 token, 0 padding) or null. Ids are validated (0 <= id < V,
// polymoe::Error otherwise) before any kernel runs. Logits land in a.logits when allocated (ce
// is then computed too). Inference only: training activations go to olmoe_forward_backward.
// Without logits, an observer asking for router outputs only (last_router_needed) stops the
// forward at that layer's router.
ForwardResult olmoe_forward(Activations& a,
                            const OlmoeWeights& w,
                            const int32_t* ids,
                            const int32_t* mask,
                            int64_t B,
                            int64_t S,
                            ForwardObserver* observer = nullptr,
                            const Intervention* intervention = nullptr);

// Training objectives (DESIGN.md): ce; hf = ce + coef*aux; hf_z = hf + 0.001*z;
// olmoe = ce + megablocks_lb + megablocks_z.
enum class Objective { Ce, Hf, HfZ, Olmoe };
double objective_value(const ForwardResult& r, Objective o, double router_aux_loss_coef);

// How one batch's loss is normalised when it is a micro-batch of a larger global batch
// (gradient accumulation, data parallelism; train/step_grad.h). The default is the batch on its
// own, and then every value is bit for bit what it was without the hook. With the fields set,
// the gradient written is this batch's share of the gradient of the global batch's loss, so the
// shares of all micro-batches sum to the global gradient:
//   ce:     d/d logits = (softmax - onehot) / ce_tokens, ce_tokens counted over the global batch
//   router: every router-loss gradient (lb, aux, z terms) is multiplied by router_weight; with
//           `global` null these terms are this batch's own (lb_scope micro: router_weight = 1/M
//           for M micro-batches makes the objective the mean of the micro-batches' terms)
//   global: lb_scope global. The statistics of the whole batch (all micro-batches, all ranks)
//           replace the batch's own. The lb and aux terms are quadratic in batch statistics
//           (count x mean probability), but counts carry no gradient, so with the global counts
//           known before backward the gradient with respect to row t's router probabilities is
//             olmoe lb: coef E / (L T_g K) * count_g[l,e] / T_g
//             hf aux:   coef E * F_g[e] / R_g^2   (F_g: top-k slots of non-padding rows, layers
//                       pooled; R_g: non-padding rows times L)
//           and the z terms divide by the global row count T_g instead of T.
// The ForwardResult keeps this batch's own loss values; the caller combines them.
struct GlobalRouterStats {
    double rows = 0;                   // T_g: all rows of the global batch
    double masked_rows = 0;            // R_g: non-padding rows of the global batch, times L
    std::vector<double> count;         // [L, E] top-k slots per layer, all rows
    std::vector<double> masked_count;  // [E] top-k slots of non-padding rows, layers pooled
};
struct LossNorm {
    int64_t ce_tokens = 0;       // CE denominator (0: this batch's counted rows)
    double router_weight = 1.0;  // multiplies every router-loss gradient
    const GlobalRouterStats* global = nullptr;
};

// Rows of a [B, S] batch whose next-token target is counted by the CE (the denominator of ce).
int64_t count_targets(const int32_t* mask, int64_t B, int64_t S);

// One training forward and backward of `objective`: the losses (as olmoe_forward's) and their
// gradient written into `grad` (every element overwritten: it need not be zeroed), laid out by
// `layout` ([layout.total]): frozen parameters get nothing, and work that only feeds them is
// skipped (their weight-gradient GEMMs, and the whole backward below the lowest trainable
// parameter); the gradients that are computed are those of the full backward, bit for bit. The pad
// embedding row gets no gradient; experts that received no token get zero; top-k selections carry
// no gradient. `a` comes from allocate_activations(train = true). The lm head and cross-entropy run
// in chunks of a.head_rows rows: logits of a chunk, then the CE value and its gradient in one pass
// (the CE gradient does not depend on the router terms), then the lm-head GEMMs, so [T, V] logits
// are never held; the CE sum runs in row order, so the loss equals olmoe_forward's bit for bit.
ForwardResult olmoe_forward_backward(float* grad,
                                     const GradLayout& layout,
                                     Activations& a,
                                     const OlmoeWeights& w,
                                     const int32_t* ids,
                                     const int32_t* mask,
                                     int64_t B,
                                     int64_t S,
                                     Objective objective,
                                     const LossNorm& norm = {});

// The same with every parameter trainable (grad in the slab layout of w.table, f32 weights).
ForwardResult olmoe_forward_backward(std::vector<float>& grad,
                                     Activations& a,
                                     const OlmoeWeights& w,
                                     const int32_t* ids,
                                     const int32_t* mask,
                                     int64_t B,
                                     int64_t S,
                                     Objective objective);

}  // namespace polymoe::model
