// Scalar reference kernels: the executable spec of kernels/cpu, templated on the scalar type and
// written for clarity, not speed (plain loops, no threads, no BLAS). Used only by tests, in double.
// Each function mirrors the math in the matching kernels/cpu header; `Variant` switches select
// deliberately wrong versions (negative controls) that golden comparisons must reject.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace polymoe::kernels::ref {

// out[M, N] = in[M, K] · w[N, K]^T (+ bias)
template <typename T, typename W>
void linear(T* out, const T* in, const W* w, const W* bias, int64_t M, int64_t N, int64_t K) {
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            T s = bias ? T(bias[n]) : T(0);
            for (int64_t k = 0; k < K; ++k)
                s += in[m * K + k] * T(w[n * K + k]);
            out[m * N + n] = s;
        }
}

// y = w * x / sqrt(mean(x^2) + eps) over groups of `cols` (per_head: groups of `group` columns,
// the wrong OLMoE variant).
template <typename T, typename W>
void rmsnorm(
    T* y, const T* x, const W* w, int64_t rows, int64_t cols, double eps, int64_t group = 0) {
    if (group <= 0) group = cols;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t g0 = 0; g0 < cols; g0 += group) {
            T ss = 0;
            for (int64_t c = g0; c < g0 + group; ++c)
                ss += x[r * cols + c] * x[r * cols + c];
            T rstd = T(1) / std::sqrt(ss / T(group) + T(eps));
            for (int64_t c = g0; c < g0 + group; ++c)
                y[r * cols + c] = T(w[c]) * (x[r * cols + c] * rstd);
        }
}

// Rotate-half RoPE on x: [B*S, heads*HD] in place; interleaved = the GPT-J pairing (wrong here).
template <typename T>
void rope(
    T* x, int64_t B, int64_t S, int64_t heads, int64_t HD, double theta, bool interleaved = false) {
    const int64_t half = HD / 2;
    for (int64_t t = 0; t < B * S; ++t)
        for (int64_t h = 0; h < heads; ++h) {
            T* v = x + (t * heads + h) * HD;
            for (int64_t i = 0; i < half; ++i) {
                const double a = double(t % S) * std::pow(theta, -2.0 * double(i) / double(HD));
                const T c = T(std::cos(a)), s = T(std::sin(a));
                const int64_t i1 = interleaved ? 2 * i : i, i2 = interleaved ? 2 * i + 1 : i + half;
                const T x1 = v[i1], x2 = v[i2];
                v[i1] = x1 * c - x2 * s;
                v[i2] = x2 * c + x1 * s;
            }
        }
}

// Softmax probabilities p[0..i] of query row i of (batch row b, head h) over the causal keys
// (0 for padded ones); false when no key is visible.
template <typename T>
bool attention_probs(T* p,
                     const T* q,
                     const T* k,
                     const int32_t* mask,
                     int64_t b,
                     int64_t h,
                     int64_t i,
                     int64_t S,
                     int64_t NH,
                     int64_t KVH,
                     int64_t HD) {
    const T* qi = q + (b * S + i) * NH * HD + h * HD;
    T mx = -INFINITY;
    for (int64_t j = 0; j <= i; ++j) {
        p[j] = -INFINITY;
        if (mask && mask[b * S + j] == 0) continue;
        const T* kj = k + (b * S + j) * KVH * HD + (h / (NH / KVH)) * HD;
        T d = 0;
        for (int64_t c = 0; c < HD; ++c)
            d += qi[c] * kj[c];
        p[j] = d / std::sqrt(T(HD));
        mx = std::max(mx, p[j]);
    }
    if (mx == -INFINITY) return false;
    T sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
        p[j] = p[j] == -INFINITY ? T(0) : std::exp(p[j] - mx);
        sum += p[j];
    }
    for (int64_t j = 0; j <= i; ++j)
        p[j] /= sum;
    return true;
}

// Causal GQA attention with optional padding mask [B, S]; rows with no visible key give zeros.
template <typename T>
void attention(T* out,
               const T* q,
               const T* k,
               const T* v,
               const int32_t* mask,
               int64_t B,
               int64_t S,
               int64_t NH,
               int64_t KVH,
               int64_t HD) {
    const int64_t kw = KVH * HD, g = NH / KVH;
    std::vector<T> p(static_cast<size_t>(S));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < NH; ++h)
            for (int64_t i = 0; i < S; ++i) {
                T* o = out + (b * S + i) * NH * HD + h * HD;
                for (int64_t c = 0; c < HD; ++c)
                    o[c] = 0;
                if (!attention_probs(p.data(), q, k, mask, b, h, i, S, NH, KVH, HD)) continue;
                for (int64_t j = 0; j <= i; ++j)
                    for (int64_t c = 0; c < HD; ++c)
                        o[c] += p[j] * v[(b * S + j) * kw + (h / g) * HD + c];
            }
}

// Gradients of `attention` (dq, dk, dv assigned), straight from the chain rule per query row:
// dp_j = do · v_j, ds_j = p_j (dp_j - sum_l p_l dp_l) / sqrt(HD), dq = sum_j ds_j k_j,
// dk_j += ds_j q, dv_j += p_j do.
template <typename T>
void attention_backward(T* dq,
                        T* dk,
                        T* dv,
                        const T* dout,
                        const T* q,
                        const T* k,
                        const T* v,
                        const int32_t* mask,
                        int64_t B,
                        int64_t S,
                        int64_t NH,
                        int64_t KVH,
                        int64_t HD) {
    const int64_t group = NH / KVH, qw = NH * HD, kw = KVH * HD;
    std::fill(dq, dq + B * S * qw, T(0));
    std::fill(dk, dk + B * S * kw, T(0));
    std::fill(dv, dv + B * S * kw, T(0));
    std::vector<T> p(static_cast<size_t>(S)), dp(static_cast<size_t>(S));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < NH; ++h)
            for (int64_t i = 0; i < S; ++i) {
                if (!attention_probs(p.data(), q, k, mask, b, h, i, S, NH, KVH, HD)) continue;
                const T* qi = q + (b * S + i) * qw + h * HD;
                const T* doi = dout + (b * S + i) * qw + h * HD;
                T pdp = 0;
                for (int64_t j = 0; j <= i; ++j) {
                    const T* vj = v + (b * S + j) * kw + (h / group) * HD;
                    dp[j] = 0;
                    for (int64_t c = 0; c < HD; ++c)
                        dp[j] += doi[c] * vj[c];
                    pdp += p[j] * dp[j];
                }
                for (int64_t j = 0; j <= i; ++j) {
                    const T ds = p[j] * (dp[j] - pdp) / std::sqrt(T(HD));
                    const T* kj = k + (b * S + j) * kw + (h / group) * HD;
                    T* dkj = dk + (b * S + j) * kw + (h / group) * HD;
                    T* dvj = dv + (b * S + j) * kw + (h / group) * HD;
                    for (int64_t c = 0; c < HD; ++c) {
                        dq[(b * S + i) * qw + h * HD + c] += ds * kj[c];
                        dkj[c] += ds * qi[c];
                        dvj[c] += p[j] * doi[c];
                    }
                }
            }
}

// Softmax over E, top-K descending (lower id first on ties), weights renormalised when `renorm`.
template <typename T>
void router(T* probs,
            int32_t* idx,
            T* weight,
            T* margin,
            T* lse,
            const T* logits,
            int64_t Tn,
            int64_t E,
            int64_t K,
            bool renorm) {
    std::vector<int32_t> order(static_cast<size_t>(E));
    for (int64_t t = 0; t < Tn; ++t) {
        const T* z = logits + t * E;
        T* p = probs + t * E;
        T mx = *std::max_element(z, z + E), s = 0;
        for (int64_t e = 0; e < E; ++e)
            s += std::exp(z[e] - mx);
        for (int64_t e = 0; e < E; ++e)
            p[e] = std::exp(z[e] - mx) / s;
        if (lse) lse[t] = mx + std::log(s);
        for (int64_t e = 0; e < E; ++e)
            order[e] = static_cast<int32_t>(e);
        std::stable_sort(order.begin(), order.end(),
                         [&](int32_t a, int32_t b) { return p[a] > p[b]; });
        T wsum = 0;
        for (int64_t r = 0; r < K; ++r) {
            idx[t * K + r] = order[r];
            weight[t * K + r] = p[order[r]];
            wsum += p[order[r]];
        }
        if (renorm)
            for (int64_t r = 0; r < K; ++r)
                weight[t * K + r] /= wsum;
        if (margin) margin[t] = p[order[K - 1]] - (K < E ? p[order[K]] : T(0));
    }
}

// Dropless SwiGLU MoE: out[t] = sum_r w[t,r] * down_e(silu(gate_e(x)) * up_e(x)), e = idx[t,r].
template <typename T, typename W>
void moe(T* out,
         const T* x,
         const int32_t* idx,
         const T* weight,
         const W* w_gate,
         const W* w_up,
         const W* w_down,
         int64_t Tn,
         int64_t H,
         int64_t I,
         int64_t K) {
    std::vector<T> g(static_cast<size_t>(I)), u(static_cast<size_t>(I)), y(static_cast<size_t>(H));
    for (int64_t t = 0; t < Tn; ++t) {
        T* o = out + t * H;
        for (int64_t c = 0; c < H; ++c)
            o[c] = 0;
        for (int64_t r = 0; r < K; ++r) {
            const int64_t e = idx[t * K + r];
            linear(g.data(), x + t * H, w_gate + e * I * H, static_cast<const W*>(nullptr), 1, I,
                   H);
            linear(u.data(), x + t * H, w_up + e * I * H, static_cast<const W*>(nullptr), 1, I, H);
            for (int64_t i = 0; i < I; ++i)
                g[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];
            linear(y.data(), g.data(), w_down + e * H * I, static_cast<const W*>(nullptr), 1, H, I);
            for (int64_t c = 0; c < H; ++c)
                o[c] += weight[t * K + r] * y[c];
        }
    }
}

// Mean cross-entropy over rows whose target is not -100.
template <typename T>
T cross_entropy(const T* logits, const int32_t* targets, int64_t Tn, int64_t V) {
    T sum = 0;
    int64_t n = 0;
    for (int64_t t = 0; t < Tn; ++t) {
        if (targets[t] == -100) continue;
        const T* z = logits + t * V;
        T mx = *std::max_element(z, z + V), s = 0;
        for (int64_t j = 0; j < V; ++j)
            s += std::exp(z[j] - mx);
        sum += mx + std::log(s) - z[targets[t]];
        ++n;
    }
    return n ? sum / T(n) : T(0);
}

}  // namespace polymoe::kernels::ref
