// Training trajectory against PyTorch (tests/fixtures/micro/train_trajectory.safetensors, made by
// tools/make_train_golden.py with torch.optim.AdamW in float64): 5 steps on micro's fixed batch,
// lr 1e-2, warmup 2, cosine to 0.1 lr, clip 1.0, weight decay 0.1, objective olmoe. Per-step lr,
// losses and grad norm within 1e-5 relative; final parameters within 1e-4 of each tensor's max.
// Negative control: the same run without weight decay must fail the final-parameter check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "golden/compare.h"
#include "io/npy.h"
#include "train/trainer.h"

namespace polymoe::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kMicro = fs::path(POLYMOE_SOURCE_DIR) / "tests" / "fixtures" / "micro";

struct TrainRun {
    std::vector<train::StepLog> logs;
    model::OlmoeWeights w;
};

TrainRun train_micro(double weight_decay) {
    model::OlmoeWeights w = model::load_checkpoint(kMicro.string());
    io::NpyArray a = io::read_npy((kMicro / "tokens.npy").string());
    std::vector<int32_t> ids(static_cast<size_t>(a.numel()));
    for (int64_t i = 0; i < a.numel(); ++i)
        ids[i] = static_cast<int32_t>(a.get_int(i));
    train::TrainConfig cfg;
    cfg.adam = {1e-2, 0.9, 0.95, 1e-8, weight_decay};
    cfg.steps = 5;
    cfg.warmup = 2;
    cfg.grad_clip = 1.0;
    cfg.schedule = train::Schedule::Cosine;
    cfg.objective = model::Objective::Olmoe;
    auto logs = train::train_fixed_batch(w, ids, {}, a.shape[0], a.shape[1], cfg);
    return {std::move(logs), std::move(w)};
}

double final_error(const model::OlmoeWeights& w, const Tensors& golden) {
    double worst = 0;
    for (const auto& p : w.table.params()) {
        const auto& ref = golden.at("final." + p.name);
        double d = 0, m = 1e-30;
        for (int64_t i = 0; i < p.numel; ++i) {
            d = std::max(d, std::abs(double(w.slab[p.offset + i]) - ref[i]));
            m = std::max(m, std::abs(ref[i]));
        }
        worst = std::max(worst, d / m);
    }
    return worst;
}

TEST(TrainGolden, FiveAdamWStepsMatchPyTorch) {
    const Tensors golden =
        read_all(io::SafetensorsFile::open((kMicro / "train_trajectory.safetensors").string()));
    TrainRun r = train_micro(0.1);
    ASSERT_EQ(r.logs.size(), 5u);
    double worst = 0;
    for (size_t t = 0; t < 5; ++t) {
        const auto& s = r.logs[t];
        const std::pair<const char*, double> fields[] = {{"lr", s.lr},
                                                         {"loss", s.loss},
                                                         {"ce", s.ce},
                                                         {"aux", s.aux},
                                                         {"z", s.z},
                                                         {"megablocks_lb", s.megablocks_lb},
                                                         {"megablocks_z", s.megablocks_z},
                                                         {"grad_norm", s.grad_norm}};
        for (const auto& [name, v] : fields) {
            const double ref = golden.at(name)[t];
            const double rel = std::abs(v - ref) / std::max(std::abs(ref), 1e-30);
            worst = std::max(worst, rel);
            EXPECT_LT(rel, 1e-5) << name << " at step " << t + 1;
        }
    }
    const double fin = final_error(r.w, golden);
    EXPECT_LT(fin, 1e-4);
    std::printf("[train golden] per-step worst relative %.3g, final parameters %.3g\n", worst, fin);
    const double no_decay = final_error(train_micro(0.0).w, golden);
    EXPECT_GT(no_decay, 1e-4);
    std::printf("[train golden negative control] no weight decay: final parameters %.3g\n",
                no_decay);
}

}  // namespace
}  // namespace polymoe::testing
