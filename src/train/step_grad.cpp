// One optimizer step's gradient over micro-batches and ranks (see step_grad.h).
#include "train/step_grad.h"

#include <algorithm>
#include <map>

#include "core/check.h"
#include "core/error.h"
#include "core/huge_pages.h"
#include "core/parallel.h"
#include "core/profile.h"

namespace polymoe::train {

LbScope parse_lb_scope(const std::string& s) {
    if (s == "micro") return LbScope::Micro;
    if (s == "global") return LbScope::Global;
    throw UsageError(fmt::format("[train] --lb-scope: expected micro or global, found \"{}\"", s));
}

const char* lb_scope_name(LbScope s) {
    return s == LbScope::Global ? "global" : "micro";
}

namespace {

// Per micro-batch router statistics, packed as
//   [masked_rows (non-padding rows x L), count [L, E] (top-k slots, all rows),
//    prob_layer [L, E] (sum of p, all rows), rank_count [K, E] (top-k slots by rank, non-padding
//    rows), prob_sum [E] (sum of p, non-padding rows)]
// (the statistics of kernels::RouterLossAccumulator, in the same summation order).
struct StatsLayout {
    int64_t L, E, K;
    int64_t count() const { return 1; }
    int64_t prob_layer() const { return 1 + L * E; }
    int64_t rank_count() const { return 1 + 2 * L * E; }
    int64_t prob_sum() const { return 1 + 2 * L * E + K * E; }
    int64_t size() const { return 1 + 2 * L * E + K * E + E; }
};

class StatsObserver final : public model::ForwardObserver {
public:
    StatsObserver(double* v, StatsLayout s, const int32_t* mask) : v_(v), s_(s), mask_(mask) {}
    void on_router(int layer,
                   int64_t T,
                   int64_t E,
                   int64_t K,
                   const float*,
                   const float* probs,
                   const int32_t* topk_idx,
                   const float*,
                   const float*) override {
        double* count = v_ + s_.count() + layer * E;
        double* prob_layer = v_ + s_.prob_layer() + layer * E;
        double* rank_count = v_ + s_.rank_count();
        double* prob_sum = v_ + s_.prob_sum();
        for (int64_t t = 0; t < T; ++t) {
            const bool counted = !mask_ || mask_[t] != 0;
            for (int64_t e = 0; e < E; ++e) {
                prob_layer[e] += probs[t * E + e];
                if (counted) prob_sum[e] += probs[t * E + e];
            }
            for (int64_t r = 0; r < K; ++r) {
                count[topk_idx[t * K + r]] += 1.0;
                if (counted) rank_count[r * E + topk_idx[t * K + r]] += 1.0;
            }
            v_[0] += counted ? 1.0 : 0.0;
        }
    }

    // Counts and probabilities of every layer's router; nothing else of the forward.
    int last_router_needed() const override { return static_cast<int>(s_.L) - 1; }

private:
    double* v_;
    StatsLayout s_;
    const int32_t* mask_;
};

// Loss partials of one micro-batch, gathered over ranks: ce_sum, aux, z, megablocks_lb,
// megablocks_z, then (tokens, ce sum, predicted tokens) per language.
constexpr size_t kPartials = 5;

}  // namespace

StepGradient::StepGradient(const model::OlmoeWeights& w,
                           const model::GradLayout& layout,
                           std::vector<BatchSource*> sources,
                           model::Objective objective,
                           LbScope lb_scope,
                           bool recompute,
                           const dist::Comm& comm)
    : w_(w),
      layout_(layout),
      sources_(std::move(sources)),
      objective_(objective),
      scope_(lb_scope),
      comm_(comm),
      acc_(static_cast<size_t>(layout.total)) {
    POLYMOE_CHECK(!sources_.empty(), "a step needs at least one micro-batch source");
    B_ = sources_[0]->batch();
    S_ = sources_[0]->seq();
    languages_ = sources_[0]->languages();
    for (const BatchSource* s : sources_)
        if (s->batch() != B_ || s->seq() != S_ || s->languages() != languages_)
            fail("train",
                 "micro-batch sources: expected shape [{}, {}] for every slot, found [{}, {}]", B_,
                 S_, s->batch(), s->seq());
    comm_.check_same("micro-batch rows B", B_);
    comm_.check_same("sequence length S", S_);
    comm_.check_same("--grad-accum", static_cast<int64_t>(sources_.size()));
    comm_.check_same("languages", static_cast<int64_t>(languages_.size()));
    model::allocate_activations(a_, w.config, B_, S_, true, /*train=*/true);
    a_.recompute = recompute;
    if (scope_ == LbScope::Global && objective_ != model::Objective::Ce)
        model::allocate_activations(stats_a_, w.config, B_, S_, /*logits=*/false);
    if (sources_.size() > 1) resize_huge(scratch_, static_cast<size_t>(layout.total));
    micro_.resize(sources_.size());
}

std::vector<double> StepGradient::router_stats(const Micro& mb) {
    const model::OlmoeConfig& c = w_.config;
    const StatsLayout sl{c.num_hidden_layers, c.num_experts, c.num_experts_per_tok};
    std::vector<double> v(static_cast<size_t>(sl.size()), 0.0);
    const int32_t* mask = mb.mask.empty() ? nullptr : mb.mask.data();
    StatsObserver obs(v.data(), sl, mask);
    model::olmoe_forward(stats_a_, w_, mb.ids.data(), mask, B_, S_, &obs);
    return v;
}

StepStats StepGradient::compute(float* grad) {
    const model::OlmoeConfig& c = w_.config;
    const int64_t L = c.num_hidden_layers, E = c.num_experts, K = c.num_experts_per_tok;
    const StatsLayout sl{L, E, K};
    const bool global = scope_ == LbScope::Global && objective_ != model::Objective::Ce;
    const size_t local = sources_.size();
    const size_t M = local * static_cast<size_t>(comm_.size());
    const size_t total = static_cast<size_t>(layout_.total);

    // 1. This rank's micro-batches, their target counts and (global scope) router statistics.
    const size_t pre = 1 + (global ? static_cast<size_t>(sl.size()) : 0);
    std::vector<double> mine;
    for (size_t k = 0; k < local; ++k) {
        Micro& mb = micro_[k];
        sources_[k]->next(mb.ids, mb.mask, mb.row_language);
        mine.push_back(static_cast<double>(
            model::count_targets(mb.mask.empty() ? nullptr : mb.mask.data(), B_, S_)));
        if (global) {
            const std::vector<double> v = router_stats(mb);
            mine.insert(mine.end(), v.begin(), v.end());
        }
    }
    // 2. Global normalisers, summed in micro-batch order (counts are integers: exact).
    const std::vector<double> all = comm_.allgather(mine);
    double ce_tokens = 0;
    std::vector<double> gs(global ? static_cast<size_t>(sl.size()) : 0, 0.0);
    for (size_t m = 0; m < M; ++m) {
        ce_tokens += all[m * pre];
        for (size_t i = 0; i < gs.size(); ++i)
            gs[i] += all[m * pre + 1 + i];
    }
    model::GlobalRouterStats g;
    if (global) {
        g.rows = static_cast<double>(M) * static_cast<double>(B_ * S_);
        g.masked_rows = gs[0];
        g.count.assign(gs.begin() + sl.count(), gs.begin() + sl.count() + L * E);
        g.masked_count.assign(static_cast<size_t>(E), 0.0);
        for (int64_t r = 0; r < K; ++r)
            for (int64_t e = 0; e < E; ++e)
                g.masked_count[static_cast<size_t>(e)] +=
                    gs[static_cast<size_t>(sl.rank_count() + r * E + e)];
    }
    model::LossNorm norm;
    norm.ce_tokens = static_cast<int64_t>(ce_tokens);
    norm.router_weight = global ? 1.0 : 1.0 / static_cast<double>(M);
    norm.global = global ? &g : nullptr;

    // 3. Forward and backward of each micro-batch; gradients summed along the tree.
    const size_t nl = languages_.size();
    const size_t part = kPartials + 3 * nl;
    std::vector<double> partials;
    for (size_t k = 0; k < local; ++k) {
        Micro& mb = micro_[k];
        const int32_t* mask = mb.mask.empty() ? nullptr : mb.mask.data();
        float* out = local == 1 ? grad : scratch_.data();
        // The backward overwrites every element of `out` (no zeroing pass needed).
        const model::ForwardResult r = model::olmoe_forward_backward(
            out, layout_, a_, w_, mb.ids.data(), mask, B_, S_, objective_, norm);
        if (global) {
            // The statistics pass must have seen the routing this backward used.
            std::vector<double> count(static_cast<size_t>(L * E), 0.0);
            for (int64_t l = 0; l < L; ++l)
                for (int32_t e : a_.saved[static_cast<size_t>(l)].topk_idx)
                    count[static_cast<size_t>(l * E + e)] += 1.0;
            const double* seen = mine.data() + k * pre + 1 + sl.count();
            POLYMOE_CHECK(std::equal(count.begin(), count.end(), seen),
                          "lb_scope global: the statistics forward routed differently");
        }
        if (local > 1) acc_.push(out);
        double ce_sum = 0;  // in row order, as olmoe_forward_backward sums it
        for (int64_t t = 0; t < B_ * S_; ++t)
            if (a_.targets[static_cast<size_t>(t)] != -100)
                ce_sum += a_.ce_rows[static_cast<size_t>(t)];
        partials.insert(partials.end(), {ce_sum, r.aux, r.z, r.megablocks_lb, r.megablocks_z});
        const size_t at = partials.size();
        partials.resize(at + 3 * nl, 0.0);
        for (int64_t b = 0; b < static_cast<int64_t>(mb.row_language.size()); ++b) {
            const auto it = std::find(languages_.begin(), languages_.end(),
                                      mb.row_language[static_cast<size_t>(b)]);
            POLYMOE_CHECK(it != languages_.end(), "a row of a language the source did not list");
            double* v = partials.data() + at + 3 * static_cast<size_t>(it - languages_.begin());
            v[0] += static_cast<double>(S_);
            for (int64_t i = b * S_; i < (b + 1) * S_; ++i)
                if (a_.targets[static_cast<size_t>(i)] != -100)
                    v[1] += a_.ce_rows[static_cast<size_t>(i)], v[2] += 1;
        }
    }
    if (local > 1) acc_.take(grad);
    comm_.tree_sum(grad, total);

    // 4. The global batch's losses from the partials, in micro-batch order.
    const std::vector<double> ps = comm_.allgather(partials);
    StepStats st;
    model::ForwardResult& r = st.r;
    double ce_sum = 0, aux = 0, z = 0, lb = 0, mz = 0;
    std::vector<double> lang(3 * nl, 0.0);
    for (size_t m = 0; m < M; ++m) {
        const double* p = ps.data() + m * part;
        ce_sum += p[0], aux += p[1], z += p[2], lb += p[3], mz += p[4];
        for (size_t i = 0; i < 3 * nl; ++i)
            lang[i] += p[kPartials + i];
    }
    const double Md = static_cast<double>(M);
    r.ce_tokens = norm.ce_tokens;
    r.ce = ce_tokens > 0 ? ce_sum / ce_tokens : 0.0;
    r.aux = aux / Md;
    r.z = z / Md;
    r.megablocks_lb = lb / Md;
    r.megablocks_z = mz / Md;
    if (global) {
        // The formulas of kernels::RouterLossAccumulator::finalize on the global statistics.
        const double mr = gs[0];
        if (mr > 0) {
            double s = 0.0;
            for (int64_t i = 0; i < K; ++i)
                for (int64_t e = 0; e < E; ++e)
                    s += (gs[static_cast<size_t>(sl.rank_count() + i * E + e)] / mr) *
                         (gs[static_cast<size_t>(sl.prob_sum() + e)] / mr);
            r.aux = static_cast<double>(E) * s;
        }
        const double LT = static_cast<double>(L) * g.rows;
        double acc = 0.0;
        for (int64_t i = 0; i < L * E; ++i)
            acc += gs[static_cast<size_t>(sl.count() + i)] *
                   (gs[static_cast<size_t>(sl.prob_layer() + i)] / g.rows);
        r.megablocks_lb =
            c.router_aux_loss_coef * static_cast<double>(E) / (LT * static_cast<double>(K)) * acc;
    }
    r.hf_total = r.ce + c.router_aux_loss_coef * r.aux;
    r.olmoe_total = r.ce + r.megablocks_lb + r.megablocks_z;
    st.tokens = static_cast<int64_t>(M) * B_ * S_;
    std::map<std::string, size_t> order;
    for (size_t i = 0; i < nl; ++i)
        order[languages_[i]] = i;
    for (const auto& [code, i] : order) {
        if (lang[3 * i] == 0) continue;
        st.tokens_by_language.emplace_back(code, static_cast<int64_t>(lang[3 * i]));
        st.ce_by_language.emplace_back(
            code, lang[3 * i + 2] > 0 ? lang[3 * i + 1] / lang[3 * i + 2] : 0.0);
    }
    return st;
}

}  // namespace polymoe::train
