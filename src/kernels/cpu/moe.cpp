// Dropless SwiGLU MoE forward and backward (see moe.h). The expert GEMMs go through linear_forward
// (oneDNN) one expert at a time with all threads; gather, activation and combine are parallel over
// rows.
#include "kernels/cpu/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/parallel.h"
#include "kernels/cpu/matmul.h"

namespace polymoe::kernels {

void moe_permute(MoeWorkspace& ws, const int32_t* topk_idx, int64_t T, int64_t E, int64_t K) {
    ws.count.assign(static_cast<size_t>(E), 0);
    ws.offset.assign(static_cast<size_t>(E + 1), 0);
    ws.row_token.resize(static_cast<size_t>(T * K));
    ws.slot_row.resize(static_cast<size_t>(T * K));
    for (int64_t s = 0; s < T * K; ++s)
        ws.count[topk_idx[s]]++;
    for (int64_t e = 0; e < E; ++e)
        ws.offset[e + 1] = ws.offset[e] + ws.count[e];
    std::vector<int64_t> fill(ws.offset.begin(), ws.offset.end() - 1);
    for (int64_t s = 0; s < T * K; ++s) {
        const int64_t row = fill[topk_idx[s]]++;
        ws.slot_row[s] = row;
        ws.row_token[row] = s / K;
    }
}

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
                 int64_t K) {
    moe_permute(ws, topk_idx, T, E, K);
    const int64_t R = T * K;
    ws.xg.resize(static_cast<size_t>(R * H));
    ws.g.resize(static_cast<size_t>(R * I));
    ws.u.resize(static_cast<size_t>(R * I));
    ws.a.resize(static_cast<size_t>(R * I));
    ws.y.resize(static_cast<size_t>(R * H));
    parallel_for(R, 16, [&](int64_t b, int64_t e, int) {
        for (int64_t r = b; r < e; ++r)
            std::memcpy(&ws.xg[r * H], x + ws.row_token[r] * H, static_cast<size_t>(H) * 4);
    });
    for (int64_t e = 0; e < E; ++e) {
        const int64_t n = ws.count[e], r0 = ws.offset[e];
        if (n == 0) continue;
        linear_forward(&ws.g[r0 * I], &ws.xg[r0 * H], w_gate.offset(e * I * H), nullptr, n, I, H);
        linear_forward(&ws.u[r0 * I], &ws.xg[r0 * H], w_up.offset(e * I * H), nullptr, n, I, H);
    }
    parallel_for(R * I, 4096, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) {
            const float g = ws.g[i];
            ws.a[i] = g / (1.0f + std::exp(-g)) * ws.u[i];
        }
    });
    for (int64_t e = 0; e < E; ++e) {
        const int64_t n = ws.count[e], r0 = ws.offset[e];
        if (n == 0) continue;
        linear_forward(&ws.y[r0 * H], &ws.a[r0 * I], w_down.offset(e * H * I), nullptr, n, H, I);
    }
    parallel_for(T, 8, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            float* o = out + t * H;
            for (int64_t c = 0; c < H; ++c)
                o[c] = 0.0f;
            for (int64_t r = 0; r < K; ++r) {
                const float w = topk_weight[t * K + r];
                const float* y = &ws.y[ws.slot_row[t * K + r] * H];
                for (int64_t c = 0; c < H; ++c)
                    o[c] += w * y[c];
            }
        }
    });
}

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
                  int64_t K) {
    const int64_t R = T * K;
    auto grad_of = [](float* const* dw, int64_t e) { return dw ? dw[e] : nullptr; };
    // An expert's da (gradient of silu(g)*u) feeds dx and its gate/up weight gradients.
    auto needs_da = [&](int64_t e) {
        return dx != nullptr || grad_of(dw_gate, e) != nullptr || grad_of(dw_up, e) != nullptr;
    };
    ws.dy.resize(static_cast<size_t>(R * H));
    ws.da.resize(static_cast<size_t>(R * I));
    ws.dg.resize(static_cast<size_t>(R * I));
    ws.du.resize(static_cast<size_t>(R * I));
    if (dx) ws.dxg.resize(static_cast<size_t>(R * H));
    // Scatter dout to grouped rows scaled by the routing weight; gradient of the weights.
    parallel_for(T, 8, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            const float* d = dout + t * H;
            for (int64_t r = 0; r < K; ++r) {
                const int64_t row = ws.slot_row[t * K + r];
                const float w = topk_weight[t * K + r];
                const float* y = &ws.y[row * H];
                float* dyr = &ws.dy[row * H];
                double dot = 0.0;
                for (int64_t c = 0; c < H; ++c) {
                    dot += static_cast<double>(d[c]) * y[c];
                    dyr[c] = w * d[c];
                }
                dtopk_weight[t * K + r] = static_cast<float>(dot);
            }
        }
    });
    // Weight gradients are assigned; an expert without rows gets zeros (its weight decay still
    // applies in AdamW).
    auto zero = [](float* p, int64_t n) {
        if (p)
            parallel_for(n, 1 << 14,
                         [=](int64_t b, int64_t e, int) { std::fill(p + b, p + e, 0.0f); });
    };
    for (int64_t e = 0; e < E; ++e) {
        const int64_t n = ws.count[e], r0 = ws.offset[e];
        float* dwd = grad_of(dw_down, e);
        if (n == 0) {
            zero(dwd, H * I);
            zero(grad_of(dw_gate, e), I * H);
            zero(grad_of(dw_up, e), I * H);
            continue;
        }
        if (!needs_da(e) && !dwd) continue;
        linear_backward(needs_da(e) ? &ws.da[r0 * I] : nullptr, dwd, nullptr, &ws.dy[r0 * H],
                        &ws.a[r0 * I], w_down.offset(e * H * I), n, H, I, /*accumulate=*/false);
    }
    auto silu_backward = [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) {
            const float g = ws.g[i], sg = 1.0f / (1.0f + std::exp(-g));
            ws.du[i] = ws.da[i] * g * sg;
            ws.dg[i] = ws.da[i] * ws.u[i] * sg * (1.0f + g * (1.0f - sg));
        }
    };
    if (dx) {
        parallel_for(R * I, 4096, silu_backward);
    } else {
        for (int64_t e = 0; e < E; ++e)
            if (ws.count[e] > 0 && needs_da(e))
                parallel_for(ws.count[e] * I, 4096, [&](int64_t b, int64_t f, int tid) {
                    silu_backward(ws.offset[e] * I + b, ws.offset[e] * I + f, tid);
                });
    }
    std::vector<float> tmp;
    for (int64_t e = 0; e < E; ++e) {
        const int64_t n = ws.count[e], r0 = ws.offset[e];
        float* dwg = grad_of(dw_gate, e);
        float* dwu = grad_of(dw_up, e);
        if (n == 0 || (!dx && !dwg && !dwu)) continue;
        if (dx) tmp.resize(static_cast<size_t>(n * H));
        linear_backward(dx ? &ws.dxg[r0 * H] : nullptr, dwg, nullptr, &ws.dg[r0 * I],
                        &ws.xg[r0 * H], w_gate.offset(e * I * H), n, I, H, /*accumulate=*/false);
        linear_backward(dx ? tmp.data() : nullptr, dwu, nullptr, &ws.du[r0 * I], &ws.xg[r0 * H],
                        w_up.offset(e * I * H), n, I, H, /*accumulate=*/false);
        if (!dx) continue;
        float* dst = &ws.dxg[r0 * H];
        for (int64_t i = 0; i < n * H; ++i)
            dst[i] += tmp[i];
    }
    if (!dx) return;
    parallel_for(T, 8, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
            float* o = dx + t * H;
            for (int64_t c = 0; c < H; ++c)
                o[c] = 0.0f;
            for (int64_t r = 0; r < K; ++r) {
                const float* g = &ws.dxg[ws.slot_row[t * K + r] * H];
                for (int64_t c = 0; c < H; ++c)
                    o[c] += g[c];
            }
        }
    });
}

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
                  int64_t K) {
    std::vector<float*> g(static_cast<size_t>(E)), u(g.size()), d(g.size());
    for (int64_t e = 0; e < E; ++e) {
        g[static_cast<size_t>(e)] = dw_gate ? dw_gate + e * I * H : nullptr;
        u[static_cast<size_t>(e)] = dw_up ? dw_up + e * I * H : nullptr;
        d[static_cast<size_t>(e)] = dw_down ? dw_down + e * H * I : nullptr;
    }
    moe_backward(dx, dtopk_weight, g.data(), u.data(), d.data(), ws, dout, topk_weight, w_gate,
                 w_up, w_down, T, H, I, E, K);
}

}  // namespace polymoe::kernels
