// ForwardObserver tests on the micro shape: an observer that needs router outputs only
// (last_router_needed) gets, bit for bit, the routing of the full forward for the layers it asks
// for, the forward skips the experts of its last layer and every layer above it (counted with the
// region profile, not timed), and the request is ignored when logits are computed.
#include "model/observer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/profile.h"
#include "model/olmoe.h"
#include "model/params.h"

namespace polymoe::model {
namespace {

struct Recorder : ForwardObserver {
    int last = -1;  // what last_router_needed answers
    std::vector<int> router_layers, hidden_layers;
    std::vector<std::vector<int32_t>> idx;
    std::vector<std::vector<float>> wt, logits;
    void on_router(int layer,
                   int64_t T,
                   int64_t E,
                   int64_t K,
                   const float* lg,
                   const float*,
                   const int32_t* ti,
                   const float* tw,
                   const float*) override {
        router_layers.push_back(layer);
        idx.emplace_back(ti, ti + T * K);
        wt.emplace_back(tw, tw + T * K);
        logits.emplace_back(lg, lg + T * E);
    }
    void on_hidden(int layer, int64_t, int64_t, const float*) override {
        hidden_layers.push_back(layer);
    }
    int last_router_needed() const override { return last; }
};

const std::vector<int32_t> kIds = {5, 17, 200, 3, 99, 42, 7, 128, 64, 1, 250, 33};

// Runs one forward, returning how many expert and router regions the profile counted.
struct Counts {
    int64_t experts = 0, router = 0, head = 0;
};
Counts run(const OlmoeWeights& w, Recorder& rec, bool logits) {
    Activations a;
    const int64_t S = static_cast<int64_t>(kIds.size());
    allocate_activations(a, w.config, 1, S, logits);
    prof::reset();
    prof::set_enabled(true);
    olmoe_forward(a, w, kIds.data(), nullptr, 1, S, &rec);
    prof::set_enabled(false);
    Counts c;
    for (const prof::Entry& e : prof::snapshot()) {
        if (e.name == "fwd.experts") c.experts = e.calls;
        if (e.name == "fwd.router") c.router = e.calls;
        if (e.name == "fwd.head") c.head = e.calls;
    }
    prof::reset();
    return c;
}

OlmoeWeights deep_micro() {
    OlmoeConfig c = preset("micro");
    c.num_hidden_layers = 4;
    OlmoeWeights w(c);
    init_weights(w, 33);
    return w;
}

TEST(RoutingOnly, LayersUpToTheLastNeededRouteAsInTheFullForward) {
    const OlmoeWeights w = deep_micro();
    Recorder full;  // default: the whole forward
    const Counts cf = run(w, full, /*logits=*/false);
    ASSERT_EQ(full.router_layers, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(full.hidden_layers, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(cf.experts, 4);
    for (int n = 0; n < 4; ++n) {
        SCOPED_TRACE("last_router_needed " + std::to_string(n));
        Recorder r;
        r.last = n;
        const Counts c = run(w, r, /*logits=*/false);
        std::vector<int> want_router, want_hidden;
        for (int l = 0; l <= n; ++l)
            want_router.push_back(l);
        for (int l = 0; l < n; ++l)
            want_hidden.push_back(l);
        EXPECT_EQ(r.router_layers, want_router);
        EXPECT_EQ(r.hidden_layers, want_hidden);
        // The work skipped: layer n's experts and every layer above n.
        EXPECT_EQ(c.experts, n);
        EXPECT_EQ(c.router, n + 1);
        for (int l = 0; l <= n; ++l) {
            EXPECT_EQ(r.idx[l], full.idx[l]) << "layer " << l;
            EXPECT_EQ(0, std::memcmp(r.wt[l].data(), full.wt[l].data(), r.wt[l].size() * 4));
            EXPECT_EQ(
                0, std::memcmp(r.logits[l].data(), full.logits[l].data(), r.logits[l].size() * 4));
        }
    }
    // Negative control: the comparison sees a change in the layers below. With layer 0's
    // experts zeroed, layer 1's router logits differ from the full forward's.
    OlmoeWeights z = deep_micro();
    for (int64_t e = 0; e < z.config.num_experts; ++e) {
        const std::string name =
            "model.layers.0.mlp.experts." + std::to_string(e) + ".down_proj.weight";
        const ParamSpec* down = z.table.find(name);
        ASSERT_NE(down, nullptr) << name;
        std::memset(z.get(*down), 0, sizeof(float) * static_cast<size_t>(down->numel));
    }
    Recorder r;
    r.last = 1;
    run(z, r, false);
    EXPECT_EQ(0, std::memcmp(r.logits[0].data(), full.logits[0].data(), r.logits[0].size() * 4));
    EXPECT_NE(0, std::memcmp(r.logits[1].data(), full.logits[1].data(), r.logits[1].size() * 4));
}

TEST(RoutingOnly, IgnoredWhenLogitsAreComputed) {
    const OlmoeWeights w = deep_micro();
    Recorder r;
    r.last = 1;
    const Counts c = run(w, r, /*logits=*/true);
    EXPECT_EQ(r.router_layers, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(r.hidden_layers, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(c.experts, 4);
    EXPECT_EQ(c.head, 1);
}

}  // namespace
}  // namespace polymoe::model
