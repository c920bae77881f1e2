// Fixed-batch training loop (see trainer.h).
#include "train/trainer.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/timer.h"

namespace polymoe::train {

std::string StepLog::json() const {
    nlohmann::json j = {{"step", step},
                        {"lr", lr},
                        {"loss", loss},
                        {"ce", ce},
                        {"aux", aux},
                        {"z", z},
                        {"megablocks_lb", megablocks_lb},
                        {"megablocks_z", megablocks_z},
                        {"grad_norm", grad_norm},
                        {"tokens", tokens},
                        {"seconds", seconds}};
    return j.dump();
}

std::vector<StepLog> train_fixed_batch(model::OlmoeWeights& w,
                                       const std::vector<int32_t>& ids,
                                       const std::vector<int32_t>& mask,
                                       int64_t B,
                                       int64_t S,
                                       const TrainConfig& cfg,
                                       const std::function<void(const StepLog&)>& on_step) {
    model::Activations a;
    model::allocate_activations(a, w.config, B, S, true, /*train=*/true);
    AdamW opt(cfg.adam, w.slab.size());
    std::vector<float> grad(w.slab.size());
    const int32_t* m = mask.empty() ? nullptr : mask.data();
    std::vector<StepLog> logs;
    for (int64_t t = 1; t <= cfg.steps; ++t) {
        Timer timer;
        StepLog log;
        log.step = t;
        log.lr = lr_at(t, cfg.steps, cfg.warmup, cfg.adam.lr, cfg.min_lr_ratio, cfg.schedule);
        const model::ForwardResult r = model::olmoe_forward(a, w, ids.data(), m, B, S);
        log.loss = model::objective_value(r, cfg.objective, w.config.router_aux_loss_coef);
        log.ce = r.ce;
        log.aux = r.aux;
        log.z = r.z;
        log.megablocks_lb = r.megablocks_lb;
        log.megablocks_z = r.megablocks_z;
        std::fill(grad.begin(), grad.end(), 0.0f);
        model::olmoe_backward(grad, a, w, ids.data(), m, B, S, r, cfg.objective);
        log.grad_norm = clip_grad_norm(grad, cfg.grad_clip);
        opt.step(w.slab, grad, log.lr);
        log.tokens = B * S;
        log.seconds = timer.seconds();
        logs.push_back(log);
        if (on_step) on_step(log);
        if (!cfg.out.empty() && cfg.save_every > 0 && t % cfg.save_every == 0 && t < cfg.steps)
            model::save_checkpoint(w, fmt::format("{}/step-{}", cfg.out, t), cfg.dtype, 1);
    }
    if (!cfg.out.empty()) model::save_checkpoint(w, cfg.out + "/final", cfg.dtype, 1);
    return logs;
}

}  // namespace polymoe::train
