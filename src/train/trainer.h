// The training loop of `polymoe train`: forward, objective, backward, global-norm clip, AdamW
// with the step's learning rate, a JSON line per step, HF checkpoints at intervals and at the
// end (DESIGN.md CLI contract). Batches come from a BatchSource: one fixed batch (--tokens, the
// trajectory test) or the mixture loader over prepared token shards (--data). A step's gradient
// and losses come from train/step_grad.h, over --grad-accum micro-batches and MPI ranks.
//
// Checkpoints OUT/step-N/ and OUT/final/ are HF directories that also hold, written atomically
// with the weights: optimizer.safetensors (AdamW exp_avg.<name> / exp_avg_sq.<name> in f32, one
// pair per trainable HF parameter) and trainer_state.json (step, the batch source's state, the
// trainable pattern, the settings that must not change on resume). Resuming from step-N
// continues exactly as if the run had not stopped: same parameters, moments, lr schedule and
// batches.
//
// --trainable (cfg.trainable, train/param_pattern.h) trains a subset: gradients and moments
// exist for the selected parameters only (packed), the others keep their values bit for bit.
// Held-out evaluation runs every cfg.eval_interval steps through a callback, so the training
// stage does not depend on the evaluation stage.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "model/olmoe.h"
#include "train/optimizer.h"

namespace polymoe::train {

// Where the load-balancing (lb / aux) loss takes its expert statistics from (train/step_grad.h,
// docs/scaling.md): each micro-batch's own (micro) or the whole global batch's (global).
enum class LbScope { Micro, Global };

struct TrainConfig {
    AdamWConfig adam;
    int64_t steps = 1;
    double grad_clip = 1.0;
    Schedule schedule = Schedule::Cosine;
    int64_t warmup = 0;
    double min_lr_ratio = 0.1;
    model::Objective objective = model::Objective::Olmoe;
    int64_t save_every = 0;  // 0: only OUT/final
    int64_t keep = 0;        // keep the newest `keep` OUT/step-N checkpoints (0: all)
    std::string out;         // checkpoint root ("" = none)
    DType dtype = DType::F32;
    std::vector<uint8_t> decay;  // per slab element: 1 = weight decay applies (empty: all)
    std::string trainable;       // --trainable pattern ("" = every parameter)
    bool recompute = false;      // per-layer activation recomputation (model::Activations)
    LbScope lb_scope = LbScope::Micro;
    // Held-out evaluation: every eval_interval steps (0 = never), at step 0 of a fresh run and
    // after the last step, evaluate(w) returns the fields of an eval log line (for example
    // {"ce_by_language": {...}}); the trainer adds event, step and seconds and passes the line
    // to on_eval.
    int64_t eval_interval = 0;
    std::function<nlohmann::ordered_json(const model::OlmoeWeights&)> evaluate;
    std::function<void(const std::string&)> on_eval;
};

// One line of the training log (losses are of the parameters before this step's update).
struct StepLog {
    int64_t step = 0;
    double lr = 0, loss = 0, ce = 0, aux = 0, z = 0, megablocks_lb = 0, megablocks_z = 0;
    double grad_norm = 0, seconds = 0;
    double peak_rss_mib = 0;  // process peak resident set size so far (getrusage ru_maxrss)
    double rss_mib = 0;       // current resident set size after the step (/proc/self/statm)
    int64_t tokens = 0;
    // This step's rows per language (from the batch source): tokens delivered and mean CE over
    // the language's predicted tokens. Sorted by language code.
    std::vector<std::pair<std::string, int64_t>> tokens_by_language;
    std::vector<std::pair<std::string, double>> ce_by_language;
    std::string json() const;
};

// Where training batches come from.
class BatchSource {
public:
    virtual ~BatchSource() = default;
    virtual int64_t batch() const = 0;
    virtual int64_t seq() const = 0;
    // Fills ids [B*S] and mask ([B*S], or empty for no padding) and the language of each row
    // ([B], or empty when unknown).
    virtual void next(std::vector<int32_t>& ids,
                      std::vector<int32_t>& mask,
                      std::vector<std::string>& row_language) = 0;
    // Language codes its rows can have, in a fixed order (empty when rows carry none).
    virtual std::vector<std::string> languages() const { return {}; }
    virtual nlohmann::json state() const { return nullptr; }
    virtual void restore(const nlohmann::json& state) { (void)state; }
};

// The same batch every step.
class FixedBatch final : public BatchSource {
public:
    FixedBatch(std::vector<int32_t> ids, std::vector<int32_t> mask, int64_t B, int64_t S)
        : ids_(std::move(ids)), mask_(std::move(mask)), B_(B), S_(S) {}
    int64_t batch() const override { return B_; }
    int64_t seq() const override { return S_; }
    void next(std::vector<int32_t>& ids,
              std::vector<int32_t>& mask,
              std::vector<std::string>& row_language) override {
        ids = ids_;
        mask = mask_;
        row_language.clear();
    }

private:
    std::vector<int32_t> ids_, mask_;
    int64_t B_, S_;
};

// Trains `w` in place for steps (start+1 .. cfg.steps), calling on_step after every step.
// `resume_dir` (a step-N checkpoint written by train; its weights must already be in `w`)
// restores the optimizer, step count and batch source first. Returns the step logs when
// on_step is empty; with on_step they are passed to it only, so that memory stays flat over
// a long run.
std::vector<StepLog> train(model::OlmoeWeights& w,
                           BatchSource& source,
                           const TrainConfig& cfg,
                           const std::function<void(const StepLog&)>& on_step = {},
                           const std::string& resume_dir = "");

// The same over micro-batch slots and MPI ranks (train/step_grad.h): `sources` are this rank's
// grad_accum slots in order; the step's global batch is ranks x grad_accum x B rows. Every rank
// runs it; only rank 0 evaluates and writes checkpoints, and the caller logs on rank 0 only.
// Checkpoints hold every slot's source state and the ranks x grad_accum they were written
// with; resuming needs the same.
std::vector<StepLog> train(model::OlmoeWeights& w,
                           const std::vector<BatchSource*>& sources,
                           const TrainConfig& cfg,
                           const std::function<void(const StepLog&)>& on_step = {},
                           const std::string& resume_dir = "");

// Convenience for the fixed-batch trajectory test.
std::vector<StepLog> train_fixed_batch(model::OlmoeWeights& w,
                                       const std::vector<int32_t>& ids,
                                       const std::vector<int32_t>& mask,
                                       int64_t B,
                                       int64_t S,
                                       const TrainConfig& cfg,
                                       const std::function<void(const StepLog&)>& on_step = {});

// Step number stored in DIR/trainer_state.json (a checkpoint written by train), or an error
// naming the file.
int64_t checkpoint_step(const std::string& dir);

}  // namespace polymoe::train
