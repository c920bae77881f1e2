// Dropless MoE block with SwiGLU experts (HF OlmoeSparseMoeBlock / OlmoeMLP), split into named
// steps so training can save what backward needs:
//   moe_permute:  group the T*K (token, rank) slots by expert: counts, offsets, and for each
//                 grouped row its token; slots of one expert keep token order (deterministic)
//   grouped_swiglu (per expert e, rows X_e gathered from x):
//                 g = X_e W_gate[e]^T, u = X_e W_up[e]^T   [n_e, I]
//                 a = silu(g) * u,  silu(g) = g / (1 + exp(-g))
//                 y_e = a W_down[e]^T                       [n_e, H]
//   moe_combine:  out[t] = sum over ranks r in order of topk_weight[t, r] * y[slot(t, r)]
// Backward, per grouped row of token t, rank r (dy = topk_weight[t,r] * dout[t]):
//   dtopk_weight[t,r] = dout[t] · y_row                               (assigned)
//   da = dy W_down[e];  dW_down[e] += dy^T a
//   dg = da * u * silu'(g),  silu'(g) = s (1 + g (1 - s)), s = sigmoid(g);  du = da * silu(g)
//   dX_e = dg W_gate[e] + du W_up[e];  dW_gate[e] += dg^T X_e;  dW_up[e] += du^T X_e
//   dx[t] = sum over ranks in order of dX_e rows                     (assigned)
// Experts that receive no token are skipped (their gradient is zero, never "missing").
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace polymoe::kernels {

// Routing grouped by expert, plus buffers of the grouped computation ([T*K, ...] rows).
struct MoeWorkspace {
    std::vector<int64_t> count;      // [E] rows per expert
    std::vector<int64_t> offset;     // [E + 1] first grouped row of each expert
    std::vector<int64_t> row_token;  // [T*K] token of each grouped row
    std::vector<int64_t> slot_row;   // [T*K] grouped row of slot (t, r) = t*K + r
    std::vector<float> xg;           // [T*K, H] gathered inputs
    std::vector<float> g, u, a;      // [T*K, I] gate, up, silu(gate)*up
    std::vector<float> y;            // [T*K, H] expert outputs
    std::vector<float> dy, dxg;      // [T*K, H] backward scratch
    std::vector<float> da, dg, du;   // [T*K, I] backward scratch
};

void moe_permute(MoeWorkspace& ws, const int32_t* topk_idx, int64_t T, int64_t E, int64_t K);

// out: [T, H] (assigned); x: [T, H]; topk_idx, topk_weight: [T, K];
// w_gate, w_up: [E, I, H]; w_down: [E, H, I] (f32 or bf16, see matmul.h)
void moe_forward(float* out,
                 MoeWorkspace& ws,
                 const float* x,
                 const int32_t* topk_idx,
                 const float* topk_weight,
                 Weight w_gate,
                 Weight w_up,
                 Weight w_down,
                 int64_t T,
                 int64_t H,
                 int64_t I,
                 int64_t E,
                 int64_t K);

// dx: [T, H] (assigned); dtopk_weight: [T, K] (assigned); dw_gate, dw_up: [E, I, H] and
// dw_down: [E, H, I] (assigned, f32: zero for an expert that received no row); ws as left by
// moe_forward with the same weights, f32 or bf16 (bf16: each expert GEMM as in linear_backward's
// bf16 mode).
void moe_backward(float* dx,
                  float* dtopk_weight,
                  float* dw_gate,
                  float* dw_up,
                  float* dw_down,
                  MoeWorkspace& ws,
                  const float* dout,
                  const float* topk_weight,
                  Weight w_gate,
                  Weight w_up,
                  Weight w_down,
                  int64_t T,
                  int64_t H,
                  int64_t I,
                  int64_t E,
                  int64_t K);

// The same with one gradient pointer per expert (E entries each, any may be null: that expert's
// weight is frozen and its weight-gradient GEMM is skipped) and dx null when no gradient is
// needed below the block (only dtopk_weight, for the router, and the requested weight gradients
// are computed; experts that need neither are skipped entirely). Values that are computed equal
// those of the stacked form bit for bit.
void moe_backward(float* dx,
                  float* dtopk_weight,
                  float* const* dw_gate,
                  float* const* dw_up,
                  float* const* dw_down,
                  MoeWorkspace& ws,
                  const float* dout,
                  const float* topk_weight,
                  Weight w_gate,
                  Weight w_up,
                  Weight w_down,
                  int64_t T,
                  int64_t H,
                  int64_t I,
                  int64_t E,
                  int64_t K);

}  // namespace polymoe::kernels
