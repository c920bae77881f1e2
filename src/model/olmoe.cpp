// OLMoE forward assembly: a flat loop over layers calling kernels (see olmoe.h).
#include "model/olmoe.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/error.h"
#include "core/huge_pages.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/losses.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/router.h"

namespace polymoe::model {

namespace k = polymoe::kernels;

void allocate_activations(
    Activations& a, const OlmoeConfig& c, int64_t B, int64_t S, bool logits, bool train) {
    a.train = train;
    a.saved.assign(train ? static_cast<size_t>(c.num_hidden_layers) : 0, LayerSaved{});
    if (train) logits = false;  // the training head works in row chunks (head_chunk)
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
    resize_huge(a.logits, logits ? T * static_cast<size_t>(c.vocab_size) : 0);
    a.head_rows = 0;
    a.head_chunk.clear();
    if (train) {
        // Fewest equal chunks of at most kHeadChunkBytes of logits each.
        const auto V = static_cast<int64_t>(c.vocab_size);
        const int64_t max_rows = std::max<int64_t>(1, kHeadChunkBytes / (4 * V));
        const int64_t chunks = (B * S + max_rows - 1) / max_rows;
        a.head_rows = (B * S + chunks - 1) / chunks;
        a.head_chunk.resize(static_cast<size_t>(a.head_rows * V));
    }
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

namespace {

// z_e += λ_e · std(z) per token row (population std over the E logits).
void apply_steer(float* logits, const LayerIntervention& iv, int64_t T, int64_t E) {
    if (iv.steer.empty()) return;
    POLYMOE_CHECK(static_cast<int64_t>(iv.steer.size()) == E, "steer of {} experts",
                  iv.steer.size());
    for (int64_t t = 0; t < T; ++t) {
        float* z = logits + t * E;
        double m = 0, v = 0;
        for (int64_t e = 0; e < E; ++e)
            m += z[e];
        m /= static_cast<double>(E);
        for (int64_t e = 0; e < E; ++e)
            v += (z[e] - m) * (z[e] - m);
        const double sd = std::sqrt(v / static_cast<double>(E));
        for (int64_t e = 0; e < E; ++e)
            z[e] += static_cast<float>(iv.steer[e] * sd);
    }
}

}  // namespace

Intervention Intervention::remove(
    const std::vector<int>& experts, int first, int last, int64_t E, bool drop) {
    Intervention iv;
    iv.layers.resize(static_cast<size_t>(std::max(0, last + 1)));
    for (int l = std::max(0, first); l <= last; ++l) {
        auto& v =
            drop ? iv.layers[static_cast<size_t>(l)].drop : iv.layers[static_cast<size_t>(l)].mask;
        v.assign(static_cast<size_t>(E), 0);
        for (int e : experts)
            v[static_cast<size_t>(e)] = 1;
    }
    return iv;
}

Intervention Intervention::force(const std::vector<int>& experts, int first, int last, int64_t E) {
    Intervention iv = remove(experts, first, last, E);
    for (auto& l : iv.layers)
        for (auto& m : l.mask)
            m = !m;
    return iv;
}

namespace {

// HF shift: row (b, s) predicts ids[b, s+1]; padding labels and the last column are ignored.
// Whether row t's next token is a counted target (shared by shift_targets and count_targets).
bool has_target(const int32_t* mask, int64_t t, int64_t S) {
    return t % S + 1 < S && (!mask || mask[t + 1] != 0);
}

void shift_targets(
    int32_t* targets, const int32_t* ids, const int32_t* mask, int64_t T, int64_t S) {
    for (int64_t t = 0; t < T; ++t)
        targets[t] = has_target(mask, t, S) ? ids[t + 1] : -100;
}

// One layer on the residual stream a.x, in place. sv: what backward needs (null when not
// training); losses: the router-loss accumulator (null when recomputing for backward); iv: this
// layer's intervention (evaluation only).
void layer_forward(Activations& a,
                   const OlmoeWeights& w,
                   int l,
                   const int32_t* mask,
                   LayerSaved* sv,
                   k::RouterLossAccumulator* losses,
                   ForwardObserver* observer,
                   const LayerIntervention* iv,
                   bool experts = true) {
    const OlmoeConfig& c = w.config;
    const int64_t B = a.B, S = a.S, T = B * S, H = c.hidden_size, I = c.intermediate_size,
                  E = c.num_experts, K = c.num_experts_per_tok, NH = c.num_attention_heads,
                  KVH = c.num_key_value_heads, HD = c.head_dim(), QW = c.q_width(),
                  KW = c.kv_width();
    const auto eps = static_cast<float>(c.rms_norm_eps);
    const LayerWeights lw = w.layer(l);
    if (sv) {
        prof::Scope ps(prof::Region::Save);
        sv->x_in = a.x;
        sv->rstd1.resize(T);
        sv->rstd2.resize(T);
        sv->q_rstd.resize(T);
        sv->k_rstd.resize(T);
    }
    // Attention block.
    {
        prof::Scope ps(prof::Region::Norm);
        k::rmsnorm_forward(a.h.data(), sv ? sv->rstd1.data() : nullptr, a.x.data(), lw.input_norm,
                           T, H, eps);
    }
    {
        prof::Scope ps(prof::Region::QkvProj);
        k::linear_forward(a.q.data(), a.h.data(), lw.q_proj, lw.q_bias, T, QW, H);
        k::linear_forward(a.k.data(), a.h.data(), lw.k_proj, lw.k_bias, T, KW, H);
        k::linear_forward(a.v.data(), a.h.data(), lw.v_proj, lw.v_bias, T, KW, H);
    }
    if (sv) {
        prof::Scope ps(prof::Region::Save);
        sv->q_lin = a.q;
        sv->k_lin = a.k;
        sv->v_lin = a.v;
    }
    {
        prof::Scope ps(prof::Region::Norm);
        k::rmsnorm_forward(a.q.data(), sv ? sv->q_rstd.data() : nullptr, a.q.data(), lw.q_norm, T,
                           QW, eps);
        k::rmsnorm_forward(a.k.data(), sv ? sv->k_rstd.data() : nullptr, a.k.data(), lw.k_norm, T,
                           KW, eps);
    }
    if (sv) {
        prof::Scope ps(prof::Region::Save);
        sv->qn = a.q;
        sv->kn = a.k;
    }
    {
        prof::Scope ps(prof::Region::Rope);
        if (c.clip_qkv) {
            const auto cq = static_cast<float>(*c.clip_qkv);
            clamp(a.q.data(), a.q.size(), cq);
            clamp(a.k.data(), a.k.size(), cq);
            clamp(a.v.data(), a.v.size(), cq);
        }
        k::rope_forward(a.q.data(), a.rope, B, S, NH, HD);
        k::rope_forward(a.k.data(), a.rope, B, S, KVH, HD);
    }
    {
        prof::Scope ps(prof::Region::Attention);
        k::attention_forward(a.att.data(), a.q.data(), a.k.data(), a.v.data(), mask, B, S, NH, KVH,
                             HD);
    }
    {
        prof::Scope ps(prof::Region::OProj);
        k::linear_forward(a.tmp.data(), a.att.data(), lw.o_proj, lw.o_bias, T, H, QW);
    }
    {
        prof::Scope ps(prof::Region::Residual);
        add_inplace(a.x.data(), a.tmp.data(), a.x.size());
    }
    if (sv) {
        prof::Scope ps(prof::Region::Save);
        sv->q = a.q;
        sv->k = a.k;
        sv->v = a.v;
        sv->att = a.att;
        sv->x_mid = a.x;
    }
    // MoE block.
    {
        prof::Scope ps(prof::Region::Norm);
        k::rmsnorm_forward(a.h.data(), sv ? sv->rstd2.data() : nullptr, a.x.data(), lw.post_norm, T,
                           H, eps);
    }
    {
        prof::Scope ps(prof::Region::Router);
        k::linear_forward(a.router_logits.data(), a.h.data(), lw.router, nullptr, T, E, H);
        std::vector<uint8_t> allowed;
        if (iv) {
            POLYMOE_CHECK(!a.train, "interventions are for evaluation, not training");
            apply_steer(a.router_logits.data(), *iv, T, E);
            if (!iv->mask.empty()) {
                POLYMOE_CHECK(static_cast<int64_t>(iv->mask.size()) == E, "mask of {} experts",
                              iv->mask.size());
                allowed.resize(static_cast<size_t>(E));
                int64_t n = 0;
                for (int64_t e = 0; e < E; ++e)
                    n += allowed[e] = !iv->mask[e];
                if (n < K)
                    fail("model",
                         "intervention at layer {}: expected at least {} experts left "
                         "after masking, found {}",
                         l, K, n);
            }
        }
        k::router_forward(a.probs.data(), a.topk_idx.data(), a.topk_weight.data(), a.margin.data(),
                          a.lse.data(), a.router_logits.data(), T, E, K, c.norm_topk_prob,
                          allowed.empty() ? nullptr : allowed.data());
        if (iv && !iv->drop.empty())
            for (int64_t i = 0; i < T * K; ++i)
                if (iv->drop[static_cast<size_t>(a.topk_idx[i])]) a.topk_weight[i] = 0.0f;
        if (losses) losses->add_layer(l, a.probs.data(), a.topk_idx.data(), a.lse.data(), mask, T);
        if (observer)
            observer->on_router(l, T, E, K, a.router_logits.data(), a.probs.data(),
                                a.topk_idx.data(), a.topk_weight.data(), a.margin.data());
    }
    if (!experts) return;  // routing only (ForwardObserver::last_router_needed)
    {
        prof::Scope ps(prof::Region::Experts);
        k::moe_forward(a.tmp.data(), a.moe, a.h.data(), a.topk_idx.data(), a.topk_weight.data(),
                       lw.exp_gate, lw.exp_up, lw.exp_down, T, H, I, E, K);
    }
    {
        prof::Scope ps(prof::Region::Residual);
        add_inplace(a.x.data(), a.tmp.data(), a.x.size());
    }
    if (sv) {
        prof::Scope ps(prof::Region::Save);
        sv->h2 = a.h;
        sv->probs = a.probs;
        sv->topk_weight = a.topk_weight;
        sv->topk_idx = a.topk_idx;
        sv->lse = a.lse;
        std::swap(sv->moe, a.moe);  // keep this layer's grouped buffers
    }
}

// Embedding and every layer, leaving the final residual stream in a.x (and, when a.train, what
// backward needs in a.saved: everything, or with a.recompute only each layer's input, top-k
// choices and router lse); returns the router losses.
ForwardResult forward_layers(Activations& a,
                             const OlmoeWeights& w,
                             const int32_t* ids,
                             const int32_t* mask,
                             int64_t B,
                             int64_t S,
                             ForwardObserver* observer,
                             const Intervention* intervention) {
    const OlmoeConfig& c = w.config;
    const int64_t T = B * S, H = c.hidden_size, E = c.num_experts, K = c.num_experts_per_tok,
                  V = c.vocab_size;
    if (a.B != B || a.S != S)
        fail("forward", "activations allocated for B={} S={}, called with B={} S={}", a.B, a.S, B,
             S);
    for (int64_t t = 0; t < T; ++t)
        if (ids[t] < 0 || ids[t] >= V)
            fail("forward",
                 "token id at row {} position {}: expected 0 <= id < vocab_size {}, found {}",
                 t / S, t % S, V, ids[t]);

    {
        prof::Scope ps(prof::Region::Embedding);
        k::embedding_forward(a.x.data(), ids, w.embed(), T, H);
    }
    k::RouterLossAccumulator router_losses(c.num_hidden_layers, E, K);
    // Routing only: stop at the observer's last needed router (inference without logits).
    int last = c.num_hidden_layers - 1;
    bool routing_only = false;
    if (observer && !a.train && a.logits.empty()) {
        const int n = observer->last_router_needed();
        if (n >= 0) {
            last = std::min(n, last);
            routing_only = true;
        }
    }
    for (int l = 0; l <= last; ++l) {
        const LayerIntervention* iv = intervention ? intervention->at(l) : nullptr;
        if (routing_only && l == last) {
            layer_forward(a, w, l, mask, nullptr, &router_losses, observer, iv, /*experts=*/false);
            break;
        }
        if (a.train && a.recompute) {
            LayerSaved& sv = a.saved[l];
            {
                prof::Scope ps(prof::Region::Save);
                sv.x_in = a.x;
            }
            layer_forward(a, w, l, mask, nullptr, &router_losses, observer, iv);
            prof::Scope ps(prof::Region::Save);
            sv.topk_idx = a.topk_idx;
            sv.lse = a.lse;
        } else {
            layer_forward(a, w, l, mask, a.train ? &a.saved[l] : nullptr, &router_losses, observer,
                          iv);
        }
        if (observer) observer->on_hidden(l, T, H, a.x.data());
    }

    ForwardResult r;
    const k::RouterLosses rl = router_losses.finalize(c.router_aux_loss_coef);
    r.aux = rl.aux;
    r.z = rl.z;
    r.megablocks_lb = rl.megablocks_lb;
    r.megablocks_z = rl.megablocks_z;
    return r;
}

void set_totals(ForwardResult& r, const OlmoeConfig& c) {
    r.hf_total = r.ce + c.router_aux_loss_coef * r.aux;
    r.olmoe_total = r.ce + r.megablocks_lb + r.megablocks_z;
}

}  // namespace

ForwardResult olmoe_forward(Activations& a,
                            const OlmoeWeights& w,
                            const int32_t* ids,
                            const int32_t* mask,
                            int64_t B,
                            int64_t S,
                            ForwardObserver* observer,
                            const Intervention* intervention) {
    POLYMOE_CHECK(!a.train, "training activations go through olmoe_forward_backward");
    const OlmoeConfig& c = w.config;
    ForwardResult r = forward_layers(a, w, ids, mask, B, S, observer, intervention);
    if (!a.logits.empty()) {
        const int64_t T = B * S, H = c.hidden_size, V = c.vocab_size;
        {
            prof::Scope ps(prof::Region::Norm);
            k::rmsnorm_forward(a.h.data(), nullptr, a.x.data(), w.final_norm(), T, H,
                               static_cast<float>(c.rms_norm_eps));
        }
        {
            prof::Scope ps(prof::Region::Head);
            k::linear_forward(a.logits.data(), a.h.data(), w.lm_head(), nullptr, T, V, H);
            shift_targets(a.targets.data(), ids, mask, T, S);
            r.ce = k::cross_entropy_forward(a.ce_rows.data(), a.logits.data(), a.targets.data(), T,
                                            V, &r.ce_tokens);
        }
    }
    set_totals(r, c);
    return r;
}

int64_t count_targets(const int32_t* mask, int64_t B, int64_t S) {
    int64_t n = 0;
    for (int64_t t = 0; t < B * S; ++t)
        n += has_target(mask, t, S) ? 1 : 0;
    return n;
}

double objective_value(const ForwardResult& r, Objective o, double coef) {
    switch (o) {
        case Objective::Ce:
            return r.ce;
        case Objective::Hf:
            return r.ce + coef * r.aux;
        case Objective::HfZ:
            return r.ce + coef * r.aux + 0.001 * r.z;
        case Objective::Olmoe:
            return r.olmoe_total;
    }
    return r.ce;
}

namespace {

// Gradients of the router losses with respect to each layer's probabilities (dprobs[l] [T, E])
// and log-sum-exp (dlse[l] [T]), from the saved top-k choices (counts carry no gradient), or
// from the global batch's counts and rows (norm.global, see LossNorm). Every value is scaled by
// norm.router_weight (1.0 by default, an exact multiply).
void router_loss_grads(std::vector<std::vector<float>>& dprobs,
                       std::vector<std::vector<float>>& dlse,
                       const Activations& a,
                       const OlmoeConfig& c,
                       const int32_t* mask,
                       int64_t T,
                       Objective o,
                       const LossNorm& norm) {
    const int64_t L = c.num_hidden_layers, E = c.num_experts, K = c.num_experts_per_tok;
    const GlobalRouterStats* g = norm.global;
    // Tn: the row count the router terms are normalised by (the global batch's with g).
    const double Tn = g ? g->rows : double(T);
    const double coef = c.router_aux_loss_coef, LT = double(L) * Tn, wr = norm.router_weight;
    dprobs.assign(L, std::vector<float>(T * E, 0.0f));
    dlse.assign(L, std::vector<float>(T, 0.0f));
    if (o == Objective::Ce) return;
    if (o == Objective::Hf || o == Objective::HfZ) {
        // aux = E sum_e F[e] P[e] over the L*Tm non-padding rows: d aux / d p = E F[e] / (L*Tm).
        std::vector<double> F(E, 0.0);
        double rows = 0;
        if (g) {
            F = g->masked_count;
            rows = g->masked_rows;
        } else {
            for (int64_t l = 0; l < L; ++l)
                for (int64_t t = 0; t < T; ++t) {
                    if (mask && mask[t] == 0) continue;
                    rows += 1;
                    for (int64_t r = 0; r < K; ++r)
                        F[a.saved[l].topk_idx[t * K + r]] += 1;
                }
        }
        if (rows > 0)
            for (int64_t l = 0; l < L; ++l)
                for (int64_t t = 0; t < T; ++t) {
                    if (mask && mask[t] == 0) continue;
                    for (int64_t e = 0; e < E; ++e)
                        dprobs[l][t * E + e] =
                            static_cast<float>(wr * (coef * double(E) * (F[e] / rows) / rows));
                }
        if (o == Objective::HfZ)
            for (int64_t l = 0; l < L; ++l)
                for (int64_t t = 0; t < T; ++t)
                    dlse[l][t] = static_cast<float>(wr * (0.001 * 2.0 * a.saved[l].lse[t] / LT));
        return;
    }
    // olmoe: megablocks_lb = coef E/(L T K) sum count[l,e] P[l,e], P = mean_t p (all rows);
    // megablocks_z = 0.001 sum lse^2 / (L T K).
    for (int64_t l = 0; l < L; ++l) {
        std::vector<double> count(E, 0.0);
        if (g)
            std::copy_n(g->count.begin() + l * E, E, count.begin());
        else
            for (int64_t s = 0; s < T * K; ++s)
                count[a.saved[l].topk_idx[s]] += 1;
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t e = 0; e < E; ++e)
                dprobs[l][t * E + e] =
                    static_cast<float>(wr * (coef * double(E) / (LT * double(K)) * count[e] / Tn));
            dlse[l][t] =
                static_cast<float>(wr * (0.001 * 2.0 * a.saved[l].lse[t] / (LT * double(K))));
        }
    }
}

// Zeroes gradient entries whose forward value was clamped (torch.clamp passes the gradient
// where -c <= x <= c).
void clip_mask(float* d, const std::vector<float>& x, float c) {
    for (size_t i = 0; i < x.size(); ++i)
        if (x[i] < -c || x[i] > c) d[i] = 0.0f;
}

void add_to(float* x, const std::vector<float>& y) {
    for (size_t i = 0; i < y.size(); ++i)
        x[i] += y[i];
}

}  // namespace

namespace {

// The head (cross-entropy included, which fills fr.ce) and the backward of forward_layers.
void backward(float* grad,
              const GradLayout& layout,
              Activations& a,
              const OlmoeWeights& w,
              const int32_t* ids,
              const int32_t* mask,
              int64_t B,
              int64_t S,
              ForwardResult& fr,
              Objective objective,
              const LossNorm& norm) {
    const OlmoeConfig& c = w.config;
    const int64_t T = B * S, H = c.hidden_size, I = c.intermediate_size, E = c.num_experts,
                  K = c.num_experts_per_tok, V = c.vocab_size, NH = c.num_attention_heads,
                  KVH = c.num_key_value_heads, HD = c.head_dim(), QW = c.q_width(),
                  KW = c.kv_width();
    const int64_t L = c.num_hidden_layers;
    const auto eps = static_cast<float>(c.rms_norm_eps);
    POLYMOE_CHECK(a.train && a.B == B && a.S == S, "backward needs a training forward");
    prof::PhaseScope phase(prof::Phase::Backward);
    const ParamTable& tab = w.table;
    POLYMOE_CHECK(layout.offset.size() == tab.params().size(), "gradient layout size");
    // Gradient of one parameter, or null when it is frozen (or absent, as biases may be).
    auto G = [&](ParamKind kind, int l = -1, int e = -1) -> float* {
        const int64_t i = tab.index(kind, l, e);
        if (i < 0 || layout.frozen(static_cast<size_t>(i))) return nullptr;
        return grad + layout.offset[static_cast<size_t>(i)];
    };
    // Backward visits the forward's stages in reverse. A stage's position in forward order: the
    // embedding -1; in layer l, 8l + {0 input norm, 1 q/k/v projections, 2 q/k norms, 3 o_proj,
    // 4 post-attention norm, 5 router, 6 experts}; then 8L final norm and 8L+1 lm head. The
    // gradient of a stage's input is needed only while a trainable parameter sits below it.
    auto position = [&](const ParamSpec& p) -> int64_t {
        switch (p.kind) {
            case ParamKind::Embedding:
                return -1;
            case ParamKind::InputNorm:
                return 8 * p.layer;
            case ParamKind::QProj:
            case ParamKind::KProj:
            case ParamKind::VProj:
            case ParamKind::QBias:
            case ParamKind::KBias:
            case ParamKind::VBias:
                return 8 * p.layer + 1;
            case ParamKind::QNorm:
            case ParamKind::KNorm:
                return 8 * p.layer + 2;
            case ParamKind::OProj:
            case ParamKind::OBias:
                return 8 * p.layer + 3;
            case ParamKind::PostNorm:
                return 8 * p.layer + 4;
            case ParamKind::RouterGate:
                return 8 * p.layer + 5;
            case ParamKind::ExpertGate:
            case ParamKind::ExpertUp:
            case ParamKind::ExpertDown:
                return 8 * p.layer + 6;
            case ParamKind::FinalNorm:
                return 8 * L;
            case ParamKind::LmHead:
                return 8 * L + 1;
        }
        return -1;
    };
    int64_t lowest = INT64_MAX;
    for (size_t i = 0; i < tab.params().size(); ++i)
        if (!layout.frozen(i)) lowest = std::min(lowest, position(tab.params()[i]));
    auto below = [&](int64_t pos) { return lowest < pos; };

    // Every trainable gradient is written, not added to, so the caller need not zero the buffer
    // (4 GB a step at OLMoE's real dimensions with 2 layers, and the weight-gradient GEMMs then
    // do not read their output). The GEMM weights' gradients are assigned by their one GEMM
    // (experts without rows get zeros in moe_backward; the lm head's first chunk assigns, the
    // others add). What is summed from several contributions starts from zero here: the RMSNorm
    // weights and the untied embedding (a scatter over tokens; tied, it starts as the head's).
    {
        prof::Scope ps(prof::Region::GradZero);
        for (size_t i = 0; i < tab.params().size(); ++i) {
            const ParamSpec& p = tab.params()[i];
            const bool summed = p.kind == ParamKind::InputNorm || p.kind == ParamKind::PostNorm ||
                                p.kind == ParamKind::QNorm || p.kind == ParamKind::KNorm ||
                                p.kind == ParamKind::FinalNorm ||
                                (p.kind == ParamKind::Embedding && !c.tie_word_embeddings);
            if (!summed || layout.frozen(i)) continue;
            float* g = grad + layout.offset[i];
            parallel_for(p.numel, 1 << 14,
                         [=](int64_t b, int64_t e, int) { std::fill(g + b, g + e, 0.0f); });
        }
    }

    // Head, in chunks of a.head_rows rows so that [T, V] logits never exist: per chunk the
    // logits, then the cross-entropy value and its gradient at once (overwriting the logits),
    // then the lm-head gradients. The CE gradient is known before the loss value: every
    // objective is ce + router terms, and d ce / d logits = (softmax - onehot) / counted rows.
    BackwardBuffers& bb = a.back;
    auto sized = [](std::vector<float>& v, int64_t n) -> std::vector<float>& {
        v.resize(static_cast<size_t>(n));  // no-op after the first step; contents overwritten
        return v;
    };
    auto &rstd_f = sized(bb.rstd_f, T), &dh = sized(bb.dh, T * H), &dx = sized(bb.dx, T * H),
         &tmp = sized(bb.tmp, T * H);
    float* hf = a.h.data();  // free after the layers (the MoE input is saved in a.saved)
    {
        prof::Scope ps(prof::Region::Norm);
        k::rmsnorm_forward(hf, rstd_f.data(), a.x.data(), w.final_norm(), T, H, eps);
    }
    shift_targets(a.targets.data(), ids, mask, T, S);
    fr.ce_tokens =
        std::count_if(a.targets.begin(), a.targets.end(), [](int32_t t) { return t != -100; });
    const int64_t ce_norm = norm.ce_tokens > 0 ? norm.ce_tokens : fr.ce_tokens;
    const double scale = ce_norm > 0 ? 1.0 / double(ce_norm) : 0.0;
    const bool tied = c.tie_word_embeddings;
    float* dlm = G(tied ? ParamKind::Embedding : ParamKind::LmHead);
    const bool dhead = below(8 * L + 1);
    {
        prof::Scope ps(prof::Region::Head);
        for (int64_t r0 = 0; r0 < T; r0 += a.head_rows) {
            const int64_t n = std::min(a.head_rows, T - r0);
            float* z = a.head_chunk.data();
            k::linear_forward(z, hf + r0 * H, w.lm_head(), nullptr, n, V, H);
            k::cross_entropy_fused(a.ce_rows.data() + r0, z, a.targets.data() + r0, n, V, scale,
                                   nullptr);
            if (dlm || dhead)
                k::linear_backward(dhead ? dh.data() + r0 * H : nullptr, dlm, nullptr, z,
                                   hf + r0 * H, w.lm_head(), n, V, H, /*accumulate=*/r0 > 0);
        }
    }
    // The mean in row order, as cross_entropy_forward sums it.
    double ce_sum = 0;
    for (int64_t t = 0; t < T; ++t)
        if (a.targets[t] != -100) ce_sum += a.ce_rows[t];
    fr.ce = fr.ce_tokens > 0 ? ce_sum / double(fr.ce_tokens) : 0.0;
    set_totals(fr, c);
    if (!dhead) return;
    {
        prof::Scope ps(prof::Region::Norm);
        k::rmsnorm_backward(dx.data(), G(ParamKind::FinalNorm), dh.data(), a.x.data(),
                            w.final_norm(), rstd_f.data(), T, H);
    }
    if (!below(8 * L)) return;

    auto &dprobs = bb.dprobs, &dlse = bb.dlse;
    {
        prof::Scope ps(prof::Region::Router);
        router_loss_grads(dprobs, dlse, a, c, mask, T, objective, norm);
    }
    auto &dh2 = sized(bb.dh2, T * H), &dtw = sized(bb.dtw, T * K), &drl = sized(bb.drl, T * E),
         &datt = sized(bb.datt, T * QW), &dq = sized(bb.dq, T * QW), &dk = sized(bb.dk, T * KW),
         &dv = sized(bb.dv, T * KW), &g = sized(bb.g, std::max(QW, KW) * T),
         &h = sized(bb.h, T * H);
    std::vector<float*> dgate(E), dup(E), ddown(E);
    for (int l = static_cast<int>(L) - 1; l >= 0; --l) {
        const int64_t p0 = 8 * int64_t(l);
        // With a.recompute the layer's forward runs again from its saved input, into one scratch
        // set: the same kernels on the same inputs, so the same values bit for bit.
        if (a.recompute) {
            prof::PhaseScope recompute(prof::Phase::Recompute);
            {
                prof::Scope ps(prof::Region::Save);
                std::copy(a.saved[l].x_in.begin(), a.saved[l].x_in.end(), a.x.begin());
            }
            layer_forward(a, w, l, mask, &a.recomputed, nullptr, nullptr, nullptr);
        }
        LayerSaved& sv = a.recompute ? a.recomputed : a.saved[l];
        const LayerWeights lw = w.layer(l);  // GEMM weights f32, or bf16 in bf16-compute mode
        // MoE block: x_out = x_mid + moe(h2); dx holds d x_out.
        {
            prof::Scope ps(prof::Region::Experts);
            for (int e = 0; e < E; ++e) {
                dgate[e] = G(ParamKind::ExpertGate, l, e);
                dup[e] = G(ParamKind::ExpertUp, l, e);
                ddown[e] = G(ParamKind::ExpertDown, l, e);
            }
            k::moe_backward(below(p0 + 5) ? dh2.data() : nullptr, dtw.data(), dgate.data(),
                            dup.data(), ddown.data(), sv.moe, dx.data(), sv.topk_weight.data(),
                            lw.exp_gate, lw.exp_up, lw.exp_down, T, H, I, E, K);
        }
        if (!below(p0 + 6)) return;
        {
            prof::Scope ps(prof::Region::Router);
            k::router_backward(drl.data(), dtw.data(), dprobs[l].data(), dlse[l].data(),
                               sv.probs.data(), sv.topk_idx.data(), T, E, K, c.norm_topk_prob);
            k::linear_backward(below(p0 + 5) ? tmp.data() : nullptr, G(ParamKind::RouterGate, l),
                               nullptr, drl.data(), sv.h2.data(), lw.router, T, E, H,
                               /*accumulate=*/false);
        }
        if (!below(p0 + 5)) return;
        {
            prof::Scope ps(prof::Region::Residual);
            add_to(dh2.data(), tmp);
        }
        {
            prof::Scope ps(prof::Region::Norm);
            k::rmsnorm_backward(tmp.data(), G(ParamKind::PostNorm, l), dh2.data(), sv.x_mid.data(),
                                lw.post_norm, sv.rstd2.data(), T, H);
        }
        if (!below(p0 + 4)) return;
        {
            prof::Scope ps(prof::Region::Residual);
            add_to(dx.data(), tmp);  // dx = d x_mid
        }
        // Attention block: x_mid = x_in + o_proj(att).
        {
            prof::Scope ps(prof::Region::OProj);
            k::linear_backward(below(p0 + 3) ? datt.data() : nullptr, G(ParamKind::OProj, l),
                               G(ParamKind::OBias, l), dx.data(), sv.att.data(), lw.o_proj, T, H,
                               QW, /*accumulate=*/false);
        }
        if (!below(p0 + 3)) return;
        {
            prof::Scope ps(prof::Region::Attention);
            k::attention_backward(dq.data(), dk.data(), dv.data(), datt.data(), sv.q.data(),
                                  sv.k.data(), sv.v.data(), mask, B, S, NH, KVH, HD);
        }
        {
            prof::Scope ps(prof::Region::Rope);
            k::rope_backward(dq.data(), a.rope, B, S, NH, HD);
            k::rope_backward(dk.data(), a.rope, B, S, KVH, HD);
            if (c.clip_qkv) {
                const auto cq = static_cast<float>(*c.clip_qkv);
                clip_mask(dq.data(), sv.qn, cq);
                clip_mask(dk.data(), sv.kn, cq);
                clip_mask(dv.data(), sv.v_lin, cq);
            }
        }
        {
            prof::Scope ps(prof::Region::Norm);
            // q/k norms (full width), in place: dq, dk become gradients of the projections.
            k::rmsnorm_backward(g.data(), G(ParamKind::QNorm, l), dq.data(), sv.q_lin.data(),
                                lw.q_norm, sv.q_rstd.data(), T, QW);
            std::copy(g.begin(), g.begin() + T * QW, dq.begin());
            k::rmsnorm_backward(g.data(), G(ParamKind::KNorm, l), dk.data(), sv.k_lin.data(),
                                lw.k_norm, sv.k_rstd.data(), T, KW);
            std::copy(g.begin(), g.begin() + T * KW, dk.begin());
        }
        if (!below(p0 + 2)) return;
        // Recompute the normed layer input h = rms(x_in) * w_in for the projection gradients.
        {
            prof::Scope ps(prof::Region::Norm);
            k::rmsnorm_forward(h.data(), nullptr, sv.x_in.data(), lw.input_norm, T, H, eps);
        }
        const bool din = below(p0 + 1);
        {
            prof::Scope ps(prof::Region::QkvProj);
            k::linear_backward(din ? dh.data() : nullptr, G(ParamKind::QProj, l),
                               G(ParamKind::QBias, l), dq.data(), h.data(), lw.q_proj, T, QW, H,
                               /*accumulate=*/false);
            k::linear_backward(din ? tmp.data() : nullptr, G(ParamKind::KProj, l),
                               G(ParamKind::KBias, l), dk.data(), h.data(), lw.k_proj, T, KW, H,
                               /*accumulate=*/false);
            if (din) add_to(dh.data(), tmp);
            k::linear_backward(din ? tmp.data() : nullptr, G(ParamKind::VProj, l),
                               G(ParamKind::VBias, l), dv.data(), h.data(), lw.v_proj, T, KW, H,
                               /*accumulate=*/false);
        }
        if (!din) return;
        {
            prof::Scope ps(prof::Region::QkvProj);
            add_to(dh.data(), tmp);
        }
        {
            prof::Scope ps(prof::Region::Norm);
            k::rmsnorm_backward(tmp.data(), G(ParamKind::InputNorm, l), dh.data(), sv.x_in.data(),
                                lw.input_norm, sv.rstd1.data(), T, H);
        }
        {
            prof::Scope ps(prof::Region::Residual);
            add_to(dx.data(), tmp);  // dx = d x_in
        }
    }
    prof::Scope embedding_scope(prof::Region::Embedding);
    if (G(ParamKind::Embedding))
        k::embedding_backward(G(ParamKind::Embedding), dx.data(), ids, T, H,
                              c.pad_token_id ? *c.pad_token_id : -1);
}

}  // namespace

ForwardResult olmoe_forward_backward(float* grad,
                                     const GradLayout& layout,
                                     Activations& a,
                                     const OlmoeWeights& w,
                                     const int32_t* ids,
                                     const int32_t* mask,
                                     int64_t B,
                                     int64_t S,
                                     Objective objective,
                                     const LossNorm& norm) {
    POLYMOE_CHECK(a.train, "olmoe_forward_backward needs training activations");
    POLYMOE_CHECK(
        !norm.global || (norm.global->count.size() ==
                             size_t(w.config.num_hidden_layers * w.config.num_experts) &&
                         norm.global->masked_count.size() == size_t(w.config.num_experts)),
        "global router statistics of the wrong shape");
    ForwardResult r = forward_layers(a, w, ids, mask, B, S, nullptr, nullptr);
    backward(grad, layout, a, w, ids, mask, B, S, r, objective, norm);
    return r;
}

ForwardResult olmoe_forward_backward(std::vector<float>& grad,
                                     Activations& a,
                                     const OlmoeWeights& w,
                                     const int32_t* ids,
                                     const int32_t* mask,
                                     int64_t B,
                                     int64_t S,
                                     Objective objective) {
    POLYMOE_CHECK(grad.size() == w.slab.size(), "gradient slab size");
    return olmoe_forward_backward(grad.data(), GradLayout::all(w.table), a, w, ids, mask, B, S,
                                  objective);
}

}  // namespace polymoe::model
