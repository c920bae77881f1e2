// polymoe train: continue pretraining a checkpoint (DESIGN.md CLI contract). This version trains
// on one fixed [B, S] batch given by --tokens (the trajectory-test mode); --data manifests,
// --config stage files and --resume arrive with the data pipeline and are not accepted yet.
#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "train/trainer.h"

namespace polymoe::cli {

namespace {

struct TrainOptions {
    std::string model, out, tokens, mask, log, schedule = "cosine", objective = "olmoe", dtype;
    int64_t steps = 1, warmup = 0, save_every = 0, batch = 0, seq = 0;
    double lr = 4e-4, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, grad_clip = 1.0;
    int threads = 0;
};

model::Objective parse_objective(const std::string& s) {
    if (s == "ce") return model::Objective::Ce;
    if (s == "hf") return model::Objective::Hf;
    if (s == "hf_z") return model::Objective::HfZ;
    return model::Objective::Olmoe;
}

}  // namespace

std::function<void()> register_train(CLI::App& app) {
    auto o = std::make_shared<TrainOptions>();
    CLI::App* c = app.add_subcommand("train", "continue pretraining a checkpoint");
    c->add_option("--model", o->model, "input HF checkpoint directory")->required();
    c->add_option("--out", o->out, "output directory (step-N/ and final/ checkpoints)")->required();
    c->add_option("--tokens", o->tokens, "fixed batch [B,S] (.npy or text), used every step")
        ->required();
    c->add_option("--attention-mask", o->mask, "padding mask for --tokens (1 token, 0 pad)");
    c->add_option("--steps", o->steps, "total optimizer steps")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
    c->add_option("--beta1", o->beta1, "AdamW beta1")->capture_default_str();
    c->add_option("--beta2", o->beta2, "AdamW beta2")->capture_default_str();
    c->add_option("--eps", o->eps, "AdamW epsilon")->capture_default_str();
    c->add_option("--weight-decay", o->weight_decay, "decoupled weight decay (all parameters)")
        ->capture_default_str();
    c->add_option("--grad-clip", o->grad_clip, "global gradient-norm clip (0 = off)")
        ->capture_default_str();
    c->add_option("--schedule", o->schedule, "constant, cosine (to 0.1 lr) or linear")
        ->check(CLI::IsMember({"constant", "cosine", "linear"}))
        ->capture_default_str();
    c->add_option("--warmup", o->warmup, "linear warmup steps")->capture_default_str();
    c->add_option("--objective", o->objective, "hf, hf_z, olmoe or ce")
        ->check(CLI::IsMember({"hf", "hf_z", "olmoe", "ce"}))
        ->capture_default_str();
    c->add_option("--batch", o->batch, "batch rows B (must agree with --tokens)");
    c->add_option("--seq", o->seq, "sequence length S (must agree with --tokens)");
    c->add_option("--save-every", o->save_every, "write OUT/step-N every N steps (0 = only final)")
        ->capture_default_str();
    c->add_option("--dtype", o->dtype, "dtype of written checkpoints (default: the input's)")
        ->check(CLI::IsMember({"f32", "bf16"}));
    c->add_option("--log", o->log, "JSONL log, one object per step (default OUT/log.jsonl)");
    add_threads_option(c, &o->threads);
    return [o] {
        apply_threads(o->threads);
        Timer timer;
        model::OlmoeWeights w = model::load_checkpoint(o->model);
        TokenMatrix ids = read_token_matrix(o->tokens, "--tokens", 0, w.config.vocab_size);
        if ((o->batch && o->batch != ids.B) || (o->seq && o->seq != ids.S))
            fail("train", "--batch {} --seq {}: expected the shape of --tokens [{}, {}]", o->batch,
                 o->seq, ids.B, ids.S);
        TokenMatrix mask;
        if (!o->mask.empty()) {
            mask = read_token_matrix(o->mask, "--attention-mask", 0, 2);
            if (mask.B != ids.B || mask.S != ids.S)
                fail("train", "--attention-mask {}: expected shape [{}, {}], found [{}, {}]",
                     o->mask, ids.B, ids.S, mask.B, mask.S);
        }
        train::TrainConfig cfg;
        cfg.adam = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay};
        cfg.steps = o->steps;
        cfg.grad_clip = o->grad_clip;
        cfg.schedule = train::parse_schedule(o->schedule);
        cfg.warmup = o->warmup;
        cfg.objective = parse_objective(o->objective);
        cfg.save_every = o->save_every;
        cfg.out = o->out;
        cfg.dtype =
            o->dtype.empty() ? w.source_dtype : (o->dtype == "bf16" ? DType::BF16 : DType::F32);
        std::filesystem::create_directories(o->out);
        const std::string log_path = o->log.empty() ? o->out + "/log.jsonl" : o->log;
        write_run_json(
            o->out + "/run.json", "train",
            {{"model", o->model},
             {"tokens", o->tokens},
             {"steps", o->steps},
             {"lr", o->lr},
             {"beta1", o->beta1},
             {"beta2", o->beta2},
             {"eps", o->eps},
             {"weight_decay", o->weight_decay},
             {"grad_clip", o->grad_clip},
             {"schedule", o->schedule},
             {"warmup", o->warmup},
             {"objective", o->objective},
             {"save_every", o->save_every},
             {"log", log_path}},
            {{"model_config", w.config.to_json()}, {"shape", {{"B", ids.B}, {"S", ids.S}}}});
        std::ofstream log(log_path);
        if (!log) fail("train", "--log {}: cannot open for writing", log_path);
        train::train_fixed_batch(
            w, ids.data, mask.data, ids.B, ids.S, cfg, [&](const train::StepLog& s) {
                log << s.json() << "\n" << std::flush;
                fmt::print(stderr, "step {}/{} loss {:.6f} lr {:.3g} ({:.2f} s)\n", s.step,
                           cfg.steps, s.loss, s.lr, s.seconds);
            });
        fmt::print(stderr, "train: wrote {}/final in {:.1f} s\n", o->out, timer.seconds());
    };
}

}  // namespace polymoe::cli
