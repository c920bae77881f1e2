// Intervention tests on micro shapes: masking experts nobody picked changes nothing, masking all
// but a token's own top-k reproduces the unmasked forward bit for bit, dropping every expert of a
// layer equals zeroing that layer's down projections, forcing routes every token to the set with
// its original probabilities, and steering pulls an expert into every top-k.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "core/error.h"
#include "model/olmoe.h"
#include "model/params.h"

namespace polymoe::model {
namespace {

struct Recorder : ForwardObserver {
    std::vector<std::vector<int32_t>> idx;
    std::vector<std::vector<float>> wt, probs;
    void on_router(int,
                   int64_t T,
                   int64_t E,
                   int64_t K,
                   const float*,
                   const float* p,
                   const int32_t* ti,
                   const float* tw,
                   const float*) override {
        idx.emplace_back(ti, ti + T * K);
        wt.emplace_back(tw, tw + T * K);
        probs.emplace_back(p, p + T * E);
    }
};

struct Outcome {
    std::vector<float> logits;
    Recorder rec;
};

Outcome forward(const OlmoeWeights& w, const std::vector<int32_t>& ids, const Intervention* iv) {
    Outcome r;
    Activations a;
    const int64_t S = static_cast<int64_t>(ids.size());
    allocate_activations(a, w.config, 1, S, true);
    olmoe_forward(a, w, ids.data(), nullptr, 1, S, &r.rec, iv);
    r.logits = a.logits;
    return r;
}

OlmoeWeights micro() {
    OlmoeWeights w(preset("micro"));
    init_weights(w, 21);
    return w;
}

const std::vector<int32_t> kIds = {5, 17, 200, 3, 99, 42, 7, 128};

TEST(Intervention, MaskingUnusedExpertsChangesNothing) {
    OlmoeWeights w = micro();
    const std::vector<int32_t> ids = {5, 17, 200};  // 3 tokens x top-2 leave >= 2 of 8 unused
    Outcome base = forward(w, ids, nullptr);
    const int64_t E = w.config.num_experts;
    Intervention iv;
    iv.layers.resize(2);
    for (int l = 0; l < 2; ++l) {
        std::set<int32_t> used(base.rec.idx[l].begin(), base.rec.idx[l].end());
        iv.layers[l].mask.assign(static_cast<size_t>(E), 0);
        int masked = 0;
        for (int64_t e = 0; e < E; ++e)
            if (!used.count(static_cast<int32_t>(e))) iv.layers[l].mask[e] = 1, ++masked;
        ASSERT_GE(masked, 2) << "layer " << l;
    }
    Outcome m = forward(w, ids, &iv);
    EXPECT_EQ(0, std::memcmp(base.logits.data(), m.logits.data(), base.logits.size() * 4));
    // Negative control: masking one used expert changes the logits.
    Intervention used = Intervention::remove({base.rec.idx[0][0]}, 0, 0, E);
    Outcome u = forward(w, ids, &used);
    EXPECT_NE(0, std::memcmp(base.logits.data(), u.logits.data(), base.logits.size() * 4));
    EXPECT_NE(u.rec.idx[0][0], base.rec.idx[0][0]);
}

TEST(Intervention, MaskingAllButTheOwnTopKReproducesTheForward) {
    OlmoeWeights w = micro();
    const int64_t E = w.config.num_experts, K = w.config.num_experts_per_tok;
    for (int32_t id : {3, 77, 250}) {  // one token: per-layer masks are per-token masks
        Outcome base = forward(w, {id}, nullptr);
        Intervention iv;
        iv.layers.resize(2);
        for (int l = 0; l < 2; ++l) {
            iv.layers[l].mask.assign(static_cast<size_t>(E), 1);
            for (int64_t k = 0; k < K; ++k)
                iv.layers[l].mask[base.rec.idx[l][k]] = 0;
        }
        Outcome m = forward(w, {id}, &iv);
        EXPECT_EQ(0, std::memcmp(base.logits.data(), m.logits.data(), base.logits.size() * 4));
        EXPECT_EQ(base.rec.wt, m.rec.wt);
    }
}

TEST(Intervention, DropEqualsZeroingTheExpertsAndForceRoutesToTheSet) {
    OlmoeWeights w = micro();
    const int64_t E = w.config.num_experts;
    std::vector<int> all(static_cast<size_t>(E));
    for (int e = 0; e < E; ++e)
        all[static_cast<size_t>(e)] = e;
    Intervention drop = Intervention::remove(all, 1, 1, E, /*drop=*/true);
    Outcome dropped = forward(w, kIds, &drop);
    OlmoeWeights z = micro();
    const ParamSpec* p = nullptr;
    for (int e = 0; e < E; ++e) {
        p = z.table.find("model.layers.1.mlp.experts." + std::to_string(e) + ".down_proj.weight");
        ASSERT_NE(p, nullptr);
        std::fill_n(z.slab.begin() + p->offset, p->numel, 0.0f);
    }
    Outcome zeroed = forward(z, kIds, nullptr);
    ASSERT_EQ(dropped.logits.size(), zeroed.logits.size());
    for (size_t i = 0; i < zeroed.logits.size(); ++i)
        EXPECT_FLOAT_EQ(dropped.logits[i], zeroed.logits[i]);
    // Force {6, 1}: every token's top-2 is exactly that set, weights are the original softmax
    // probabilities of those experts (norm_topk_prob is false for micro).
    Outcome base = forward(w, kIds, nullptr);
    Intervention force = Intervention::force({6, 1}, 0, 0, E);
    Outcome f = forward(w, kIds, &force);
    for (size_t t = 0; t < kIds.size(); ++t) {
        std::set<int32_t> got = {f.rec.idx[0][t * 2], f.rec.idx[0][t * 2 + 1]};
        EXPECT_EQ(got, (std::set<int32_t>{1, 6}));
        for (int k = 0; k < 2; ++k)
            EXPECT_EQ(f.rec.wt[0][t * 2 + k], base.rec.probs[0][t * E + f.rec.idx[0][t * 2 + k]]);
    }
    const Intervention too_few = Intervention::force({6}, 0, 0, E);  // fewer than K experts
    EXPECT_THROW(forward(w, kIds, &too_few), polymoe::Error);
}

TEST(Intervention, SteeringPullsAnExpertIntoEveryTopK) {
    OlmoeWeights w = micro();
    const int64_t E = w.config.num_experts;
    Outcome base = forward(w, kIds, nullptr);
    int absent = 0;
    for (size_t t = 0; t < kIds.size(); ++t)
        absent += base.rec.idx[0][t * 2] != 4 && base.rec.idx[0][t * 2 + 1] != 4;
    ASSERT_GT(absent, 0);
    Intervention iv;
    iv.layers.resize(1);
    iv.layers[0].steer.assign(static_cast<size_t>(E), 0.0f);
    iv.layers[0].steer[4] = 10.0f;  // 10 standard deviations above the token's mean
    Outcome s = forward(w, kIds, &iv);
    for (size_t t = 0; t < kIds.size(); ++t)
        EXPECT_EQ(s.rec.idx[0][t * 2], 4);
}

}  // namespace
}  // namespace polymoe::model
