// Scalar double reference of the whole OLMoE forward, assembled from kernels/ref/ops.h. It is a
// second, independent executable spec: checked against the PyTorch goldens (it must agree to
// ~1e-12) and, with a `Variant`, a deliberately wrong model that the golden comparison must
// reject (negative controls: interleaved RoPE, per-head q/k norm, renormalised top-k).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kernels/ref/ops.h"
#include "model/params.h"

namespace polymoe::testing {

enum class Variant { Correct, InterleavedRope, PerHeadQkNorm, RenormTopk };

// Outputs under the golden file's names (topk_idx as doubles).
using Tensors = std::map<std::string, std::vector<double>>;

inline Tensors ref_forward(const model::OlmoeWeights& w,
                           const std::vector<int32_t>& ids,
                           const std::vector<int32_t>* mask,
                           int64_t B,
                           int64_t S,
                           Variant variant = Variant::Correct) {
    namespace ref = kernels::ref;
    using model::ParamKind;
    const auto& c = w.config;
    const int64_t T = B * S, H = c.hidden_size, I = c.intermediate_size, E = c.num_experts,
                  K = c.num_experts_per_tok, V = c.vocab_size, NH = c.num_attention_heads,
                  KVH = c.num_key_value_heads, HD = c.head_dim(), QW = c.q_width(),
                  KW = c.kv_width();
    const int32_t* m = mask ? mask->data() : nullptr;
    std::vector<double> slab(w.slab.begin(), w.slab.end());
    auto P = [&](ParamKind k, int l = -1) -> const double* {
        int64_t off = w.table.offset(k, l);
        return off < 0 ? nullptr : slab.data() + off;
    };
    Tensors out;
    std::vector<double> x(T * H), h(T * H), q(T * QW), k(T * KW), v(T * KW), att(T * QW),
        tmp(T * H), logits(T * E), probs(T * E), wts(T * K), margin(T), lse(T);
    std::vector<int32_t> idx(T * K);
    const double* emb = P(ParamKind::Embedding);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < H; ++j)
            x[t * H + j] = emb[ids[t] * H + j];
    const bool renorm = c.norm_topk_prob || variant == Variant::RenormTopk;
    // Pooled statistics for the losses.
    std::vector<double> rank_count(K * E, 0), psum(E, 0), count(c.num_hidden_layers * E, 0),
        player(c.num_hidden_layers * E, 0);
    double rows = 0, zsum = 0;
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        ref::rmsnorm(h.data(), x.data(), P(ParamKind::InputNorm, l), T, H, c.rms_norm_eps);
        ref::linear(q.data(), h.data(), P(ParamKind::QProj, l), P(ParamKind::QBias, l), T, QW, H);
        ref::linear(k.data(), h.data(), P(ParamKind::KProj, l), P(ParamKind::KBias, l), T, KW, H);
        ref::linear(v.data(), h.data(), P(ParamKind::VProj, l), P(ParamKind::VBias, l), T, KW, H);
        const int64_t group = variant == Variant::PerHeadQkNorm ? HD : 0;
        ref::rmsnorm(q.data(), q.data(), P(ParamKind::QNorm, l), T, QW, c.rms_norm_eps, group);
        ref::rmsnorm(k.data(), k.data(), P(ParamKind::KNorm, l), T, KW, c.rms_norm_eps, group);
        if (c.clip_qkv)
            for (auto* buf : {&q, &k, &v})
                for (double& e : *buf)
                    e = std::clamp(e, -*c.clip_qkv, *c.clip_qkv);
        const bool inter = variant == Variant::InterleavedRope;
        ref::rope(q.data(), B, S, NH, HD, c.rope_theta, inter);
        ref::rope(k.data(), B, S, KVH, HD, c.rope_theta, inter);
        ref::attention(att.data(), q.data(), k.data(), v.data(), m, B, S, NH, KVH, HD);
        ref::linear(tmp.data(), att.data(), P(ParamKind::OProj, l), P(ParamKind::OBias, l), T, H,
                    QW);
        for (int64_t i = 0; i < T * H; ++i)
            x[i] += tmp[i];
        ref::rmsnorm(h.data(), x.data(), P(ParamKind::PostNorm, l), T, H, c.rms_norm_eps);
        ref::linear(logits.data(), h.data(), P(ParamKind::RouterGate, l),
                    static_cast<const double*>(nullptr), T, E, H);
        ref::router(probs.data(), idx.data(), wts.data(), margin.data(), lse.data(), logits.data(),
                    T, E, K, renorm);
        ref::moe(tmp.data(), h.data(), idx.data(), wts.data(), P(ParamKind::ExpertGate, l),
                 P(ParamKind::ExpertUp, l), P(ParamKind::ExpertDown, l), T, H, I, K);
        for (int64_t i = 0; i < T * H; ++i)
            x[i] += tmp[i];
        out["router_logits." + std::to_string(l)] = logits;
        out["router_probs." + std::to_string(l)] = probs;
        out["topk_weight." + std::to_string(l)] = wts;
        out["routing_margin." + std::to_string(l)] = margin;
        out["topk_idx." + std::to_string(l)] = std::vector<double>(idx.begin(), idx.end());
        out["hidden." + std::to_string(l)] = x;
        for (int64_t t = 0; t < T; ++t) {
            const bool counted = !m || m[t] != 0;
            rows += counted;
            zsum += lse[t] * lse[t];
            for (int64_t e = 0; e < E; ++e) {
                player[l * E + e] += probs[t * E + e];
                if (counted) psum[e] += probs[t * E + e];
            }
            for (int64_t r = 0; r < K; ++r) {
                count[l * E + idx[t * K + r]] += 1;
                if (counted) rank_count[r * E + idx[t * K + r]] += 1;
            }
        }
    }
    ref::rmsnorm(h.data(), x.data(), P(ParamKind::FinalNorm), T, H, c.rms_norm_eps);
    std::vector<double> lg(T * V);
    const double* head = c.tie_word_embeddings ? emb : P(ParamKind::LmHead);
    ref::linear(lg.data(), h.data(), head, static_cast<const double*>(nullptr), T, V, H);
    std::vector<int32_t> targets(T);
    for (int64_t t = 0; t < T; ++t)
        targets[t] = (t % S + 1 < S && (!m || m[t + 1])) ? ids[t + 1] : -100;
    const double ce = ref::cross_entropy(lg.data(), targets.data(), T, V);
    double aux = 0, lb = 0;
    for (int64_t r = 0; r < K; ++r)
        for (int64_t e = 0; e < E; ++e)
            aux += rank_count[r * E + e] / rows * (psum[e] / rows);
    aux *= double(E);
    const double LT = double(c.num_hidden_layers) * double(T);
    for (size_t i = 0; i < count.size(); ++i)
        lb += count[i] * player[i] / double(T);
    const double mb_lb = c.router_aux_loss_coef * double(E) / (LT * double(K)) * lb;
    const double mb_z = 0.001 * zsum / (LT * double(K));
    out["logits"] = lg;
    out["loss.ce"] = {ce};
    out["loss.aux"] = {aux};
    out["loss.z"] = {zsum / LT};
    out["loss.megablocks_lb"] = {mb_lb};
    out["loss.megablocks_z"] = {mb_z};
    out["loss.hf_total"] = {ce + c.router_aux_loss_coef * aux};
    out["loss.olmoe_total"] = {ce + mb_lb + mb_z};
    return out;
}

}  // namespace polymoe::testing
