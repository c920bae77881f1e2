// OLMoE forward assembly: a flat loop over layers calling kernels (see olmoe.h).
#include "model/olmoe.h"

#include <algorithm>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/losses.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/router.h"

namespace polymoe::model {

namespace k = polymoe::kernels;

void allocate_activations(Activations& a, const OlmoeConfig& c, int64_t B, int64_t S, bool logits) {
    const auto T = static_cast<size_t>(B * S);
    const auto H = static_cast<size_t>(c.hidden_size), E = static_cast<size_t>(c.num_experts),
               K = static_cast<size_t>(c.num_experts_per_tok);
    a.B = B;
    a.S = S;
    a.x.resize(T * H);
    a.h.resize(T * H);
    a.tmp.resize(T * H);
    a.q.resize(T * static_cast<size_t>(c.q_width()));
    a.att.resize(a.q.size());
    a.k.resize(T * static_cast<size_t>(c.kv_width()));
    a.v.resize(a.k.size());
    a.router_logits.resize(T * E);
    a.probs.resize(T * E);
    a.topk_idx.resize(T * K);
    a.topk_weight.resize(T * K);
    a.margin.resize(T);
    a.lse.resize(T);
    a.ce_rows.resize(T);
    a.targets.resize(T);
    a.logits.resize(logits ? T * static_cast<size_t>(c.vocab_size) : 0);
    a.rope = k::rope_table(S, c.head_dim(), c.rope_theta);
}

namespace {

void clamp(float* x, size_t n, float c) {
    parallel_for(static_cast<int64_t>(n), 4096, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i)
            x[i] = std::clamp(x[i], -c, c);
    });
}

void add_inplace(float* x, const float* y, size_t n) {
    parallel_for(static_cast<int64_t>(n), 4096, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i)
            x[i] += y[i];
    });
}

}  // namespace

ForwardResult olmoe_forward(Activations& a,
                            const OlmoeWeights& w,
                            const int32_t* ids,
                            const int32_t* mask,
                            int64_t B,
                            int64_t S,
                            ForwardObserver* observer) {
    const OlmoeConfig& c = w.config;
    const int64_t T = B * S, H = c.hidden_size, I = c.intermediate_size, E = c.num_experts,
                  K = c.num_experts_per_tok, V = c.vocab_size, NH = c.num_attention_heads,
                  KVH = c.num_key_value_heads, HD = c.head_dim(), QW = c.q_width(),
                  KW = c.kv_width();
    const auto eps = static_cast<float>(c.rms_norm_eps);
    if (a.B != B || a.S != S)
        fail("forward", "activations allocated for B={} S={}, called with B={} S={}", a.B, a.S, B,
             S);
    for (int64_t t = 0; t < T; ++t)
        if (ids[t] < 0 || ids[t] >= V)
            fail("forward",
                 "token id at row {} position {}: expected 0 <= id < vocab_size {}, found {}",
                 t / S, t % S, V, ids[t]);

    k::embedding_forward(a.x.data(), ids, w.embed(), T, H);
    k::RouterLossAccumulator router_losses(c.num_hidden_layers, E, K);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const LayerWeights lw = w.layer(l);
        // Attention block.
        k::rmsnorm_forward(a.h.data(), nullptr, a.x.data(), lw.input_norm, T, H, eps);
        k::linear_forward(a.q.data(), a.h.data(), lw.q_proj, lw.q_bias, T, QW, H);
        k::linear_forward(a.k.data(), a.h.data(), lw.k_proj, lw.k_bias, T, KW, H);
        k::linear_forward(a.v.data(), a.h.data(), lw.v_proj, lw.v_bias, T, KW, H);
        k::rmsnorm_forward(a.q.data(), nullptr, a.q.data(), lw.q_norm, T, QW, eps);
        k::rmsnorm_forward(a.k.data(), nullptr, a.k.data(), lw.k_norm, T, KW, eps);
        if (c.clip_qkv) {
            const auto cq = static_cast<float>(*c.clip_qkv);
            clamp(a.q.data(), a.q.size(), cq);
            clamp(a.k.data(), a.k.size(), cq);
            clamp(a.v.data(), a.v.size(), cq);
        }
        k::rope_forward(a.q.data(), a.rope, B, S, NH, HD);
        k::rope_forward(a.k.data(), a.rope, B, S, KVH, HD);
        k::attention_forward(a.att.data(), a.q.data(), a.k.data(), a.v.data(), mask, B, S, NH, KVH,
                             HD);
        k::linear_forward(a.tmp.data(), a.att.data(), lw.o_proj, lw.o_bias, T, H, QW);
        add_inplace(a.x.data(), a.tmp.data(), a.x.size());
        // MoE block.
        k::rmsnorm_forward(a.h.data(), nullptr, a.x.data(), lw.post_norm, T, H, eps);
        k::linear_forward(a.router_logits.data(), a.h.data(), lw.router, nullptr, T, E, H);
        k::router_forward(a.probs.data(), a.topk_idx.data(), a.topk_weight.data(), a.margin.data(),
                          a.lse.data(), a.router_logits.data(), T, E, K, c.norm_topk_prob);
        router_losses.add_layer(l, a.probs.data(), a.topk_idx.data(), a.lse.data(), mask, T);
        if (observer)
            observer->on_router(l, T, E, K, a.router_logits.data(), a.probs.data(),
                                a.topk_idx.data(), a.topk_weight.data(), a.margin.data());
        k::moe_forward(a.tmp.data(), a.moe, a.h.data(), a.topk_idx.data(), a.topk_weight.data(),
                       lw.exp_gate, lw.exp_up, lw.exp_down, T, H, I, E, K);
        add_inplace(a.x.data(), a.tmp.data(), a.x.size());
        if (observer) observer->on_hidden(l, T, H, a.x.data());
    }

    ForwardResult r;
    const k::RouterLosses rl = router_losses.finalize(c.router_aux_loss_coef);
    r.aux = rl.aux;
    r.z = rl.z;
    r.megablocks_lb = rl.megablocks_lb;
    r.megablocks_z = rl.megablocks_z;
    if (!a.logits.empty()) {
        k::rmsnorm_forward(a.h.data(), nullptr, a.x.data(), w.final_norm(), T, H, eps);
        k::linear_forward(a.logits.data(), a.h.data(), w.lm_head(), nullptr, T, V, H);
        // HF shift: row (b, s) predicts ids[b, s+1]; padding labels and the last column ignored.
        for (int64_t t = 0; t < T; ++t) {
            const int64_t s = t % S;
            const bool has_next = s + 1 < S && (!mask || mask[t + 1] != 0);
            a.targets[t] = has_next ? ids[t + 1] : -100;
        }
        r.ce = k::cross_entropy_forward(a.ce_rows.data(), a.logits.data(), a.targets.data(), T, V,
                                        &r.ce_tokens);
    }
    r.hf_total = r.ce + c.router_aux_loss_coef * r.aux;
    r.olmoe_total = r.ce + r.megablocks_lb + r.megablocks_z;
    return r;
}

}  // namespace polymoe::model
