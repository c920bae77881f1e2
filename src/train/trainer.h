// The training loop of `polymoe train`: forward, objective, backward, global-norm clip, AdamW
// with the step's learning rate, a JSON line per step, HF checkpoints at intervals and at the
// end (DESIGN.md CLI contract). The data source here is one fixed [B, S] batch (--tokens);
// manifests and samplers arrive with the data pipeline (issue 5).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/olmoe.h"
#include "train/optimizer.h"

namespace polymoe::train {

struct TrainConfig {
    AdamWConfig adam;
    int64_t steps = 1;
    double grad_clip = 1.0;
    Schedule schedule = Schedule::Cosine;
    int64_t warmup = 0;
    double min_lr_ratio = 0.1;
    model::Objective objective = model::Objective::Olmoe;
    int64_t save_every = 0;  // 0: only OUT/final
    std::string out;         // checkpoint root ("" = none)
    DType dtype = DType::F32;
};

// One line of the training log (losses are of the parameters before this step's update).
struct StepLog {
    int64_t step = 0;
    double lr = 0, loss = 0, ce = 0, aux = 0, z = 0, megablocks_lb = 0, megablocks_z = 0;
    double grad_norm = 0, seconds = 0;
    int64_t tokens = 0;
    std::string json() const;
};

// Trains `w` in place on the fixed batch `ids` [B, S] (mask optional), calling on_step after
// every step. Returns the step logs.
std::vector<StepLog> train_fixed_batch(model::OlmoeWeights& w,
                                       const std::vector<int32_t>& ids,
                                       const std::vector<int32_t>& mask,
                                       int64_t B,
                                       int64_t S,
                                       const TrainConfig& cfg,
                                       const std::function<void(const StepLog&)>& on_step = {});

}  // namespace polymoe::train
