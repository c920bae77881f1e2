// polymoe train: continue pretraining a checkpoint (DESIGN.md CLI contract). Batches come from a
// fixed [B, S] batch (--tokens, the trajectory test) or from token shards (--data: a prepared
// directory, or a manifest that is prepared into --prepared first) through the mixture loader.
// --config stage.yaml supplies any long option (the command line wins). --resume step-N
// continues a run exactly (weights, AdamW moments, schedule, loader position); the log keeps its
// lines up to that step and appends, so a crash loses at most the steps since the last save.
// --trainable PATTERN trains a subset (train/param_pattern.h); --eval-interval N adds held-out
// per-language CE lines ({"event": "eval", ...}) to the log, scored by the eval stage, which the
// trainer reaches only through a callback.
//
// Data parallelism (docs/scaling.md): under `mpirun -np N`, each rank trains --grad-accum K
// micro-batch slots of --batch B rows; the global batch is N x K x B rows, and slot m = rank x K
// + k reads its own rows of --tokens (rows m*B .. m*B+B-1) or its own document shard of --data
// (shard m of N x K), so the data of a step depends on N x K only. Only rank 0 writes the log,
// run.json and checkpoints. An error on any rank ends all ranks (MPI_Abort).
#include <fnmatch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/resources.h"
#include "core/timer.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "data/stage_config.h"
#include "dist/comm.h"
#include "eval/eval.h"
#include "tokenizer/tokenizer.h"
#include "train/data_source.h"
#include "train/param_pattern.h"
#include "train/step_grad.h"
#include "train/trainer.h"

namespace polymoe::cli {

namespace fs = std::filesystem;

namespace {

struct TrainOptions {
    std::string config, model, out, tokens, data, prepared, mask, log, resume, trainable;
    std::string schedule = "cosine", objective = "olmoe", dtype, mixture = "temperature";
    std::vector<std::string> stages, replay_stages, no_decay;
    int64_t steps = 1, warmup = 0, save_every = 0, keep = 0, batch = 0, seq = 0;
    int64_t eval_interval = 0, eval_tokens = 2048, grad_accum = 1;
    std::string lb_scope = "micro", compute = "f32", weights = "f32";
    uint64_t seed = 0;
    double lr = 4e-4, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, grad_clip = 1.0;
    double replay = 0.0, temperature = 3.0, max_epochs = 0.0;
    int threads = 0;
    bool recompute = false;
};

// Fills options absent from the command line from the stage config; path-valued keys are
// resolved relative to the config file.
void apply_config(CLI::App* c, const std::string& path) {
    static const char* kPathKeys[] = {"model",          "out", "tokens", "data", "prepared",
                                      "attention-mask", "log", "resume"};
    const fs::path base = fs::path(path).parent_path();
    for (auto e : data::load_stage_config(path)) {
        // eval_interval and eval-interval both name --eval-interval (OLMo configs use '_').
        std::replace(e.key.begin(), e.key.end(), '_', '-');
        CLI::Option* opt = c->get_option_no_throw("--" + e.key);
        if (!opt || e.key == "config" || e.key == "help")
            fail("config", "{}:{}: unknown key \"{}\" (expected a long option of polymoe train)",
                 path, e.line, e.key);
        if (opt->count() > 0) continue;  // the command line wins
        for (std::string v : e.values) {
            for (const char* k : kPathKeys)
                if (e.key == k && !v.empty() && fs::path(v).is_relative())
                    v = (base / v).lexically_normal().string();
            opt->add_result(v);
        }
        try {
            opt->run_callback();
        } catch (const CLI::Error& err) {
            fail("config", "{}:{}: {}: {}", path, e.line, e.key, err.what());
        }
    }
}

std::vector<std::string> split_commas(const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) {
        std::stringstream ss(s);
        std::string item;
        while (std::getline(ss, item, ','))
            if (!item.empty()) out.push_back(item);
    }
    return out;
}

// Keeps the log's lines for steps <= `step` (a resumed run rewrites what follows).
void truncate_log(const std::string& path, int64_t step) {
    std::ifstream in(path);
    if (!in) return;
    std::string kept, line;
    while (std::getline(in, line)) {
        try {
            if (nlohmann::json::parse(line).at("step").get<int64_t>() <= step) kept += line + "\n";
        } catch (const nlohmann::json::exception&) {
            break;  // a torn last line from a crash
        }
    }
    in.close();
    std::ofstream out(path, std::ios::trunc);
    out << kept << std::flush;
    if (!out) fail("train", "--log {}: cannot rewrite: {}", path, std::strerror(errno));
}

void run_train(TrainOptions& opt, CLI::App* c, const dist::Comm& comm);

}  // namespace

std::function<void()> register_train(CLI::App& app) {
    auto o = std::make_shared<TrainOptions>();
    CLI::App* c = app.add_subcommand("train", "continue pretraining a checkpoint");
    c->add_option("--config", o->config, "stage config (YAML: long option names -> values)");
    c->add_option("--model", o->model, "input HF checkpoint directory");
    c->add_option("--out", o->out, "output directory (step-N/ and final/ checkpoints)");
    c->add_option("--tokens", o->tokens, "fixed batch [B,S] (.npy or text), used every step");
    c->add_option("--data", o->data, "prepared directory or corpus manifest (YAML)");
    c->add_option("--prepared", o->prepared, "where --data MANIFEST is prepared (OUT/prepared)");
    c->add_option("--stage", o->stages, "train on languages of these stages (default: all)")
        ->delimiter(',');
    c->add_option("--replay-stages", o->replay_stages, "stages replayed with share --replay")
        ->delimiter(',');
    c->add_option("--replay", o->replay, "share of batches rows from replay stages")
        ->capture_default_str();
    c->add_option("--mixture", o->mixture, "uniform, proportional, temperature or unimax")
        ->check(CLI::IsMember({"uniform", "proportional", "temperature", "unimax"}))
        ->capture_default_str();
    c->add_option("--temperature", o->temperature, "temperature T: p ∝ tokens^(1/T)")
        ->capture_default_str();
    c->add_option("--max-epochs", o->max_epochs, "cap per language in epochs (0 = none)")
        ->capture_default_str();
    c->add_option("--attention-mask", o->mask, "padding mask for --tokens (1 token, 0 pad)");
    c->add_option("--steps", o->steps, "total optimizer steps (also when resuming)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
    c->add_option("--beta1", o->beta1, "AdamW beta1")->capture_default_str();
    c->add_option("--beta2", o->beta2, "AdamW beta2")->capture_default_str();
    c->add_option("--eps", o->eps, "AdamW epsilon")->capture_default_str();
    c->add_option("--weight-decay", o->weight_decay, "decoupled weight decay (all parameters)")
        ->capture_default_str();
    c->add_option("--no-decay", o->no_decay,
                  "exclude parameters whose HF name matches this glob from weight decay "
                  "(repeatable, e.g. '*norm*')");
    c->add_option("--grad-clip", o->grad_clip, "global gradient-norm clip (0 = off)")
        ->capture_default_str();
    c->add_option("--schedule", o->schedule, "constant, cosine (to 0.1 lr) or linear")
        ->check(CLI::IsMember({"constant", "cosine", "linear"}))
        ->capture_default_str();
    c->add_option("--warmup", o->warmup, "linear warmup steps")->capture_default_str();
    c->add_option("--objective", o->objective, "hf, hf_z, olmoe or ce")
        ->check(CLI::IsMember({"hf", "hf_z", "olmoe", "ce"}))
        ->capture_default_str();
    c->add_option("--batch", o->batch,
                  "batch rows B (default 8 with --data; must agree with "
                  "--tokens)");
    c->add_option("--seq", o->seq, "sequence length S (default 256 with --data)");
    c->add_option("--grad-accum", o->grad_accum,
                  "micro-batches of --batch rows per optimizer step and rank; the step's batch is "
                  "ranks x grad-accum x batch rows (with --tokens: its rows, split in order)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_option("--lb-scope", o->lb_scope,
                  "load-balancing loss statistics: micro (each micro-batch's own; the mean over "
                  "micro-batches) or global (expert counts and router probabilities of the whole "
                  "step's batch, over micro-batches and ranks; one extra forward per micro-batch)")
        ->check(CLI::IsMember({"micro", "global"}))
        ->capture_default_str();
    c->add_option("--seed", o->seed, "data order seed")->capture_default_str();
    c->add_option("--save-every", o->save_every, "write OUT/step-N every N steps (0 = only final)")
        ->capture_default_str();
    c->add_option("--keep", o->keep, "keep only the newest N step-N checkpoints (0 = all)")
        ->capture_default_str();
    c->add_option("--dtype", o->dtype, "dtype of written checkpoints (default: the input's)")
        ->check(CLI::IsMember({"f32", "bf16"}));
    c->add_option("--resume", o->resume, "continue from OUT/step-N (a checkpoint of this run)");
    c->add_option("--log", o->log,
                  "JSONL log, one object per step, plus {\"event\": \"eval\"} lines "
                  "(default OUT/log.jsonl)");
    c->add_option("--trainable", o->trainable,
                  "train only these parameters; the others are frozen (no gradient, no optimizer "
                  "state, unchanged). Comma-separated terms over HF names: globs (* also matches "
                  "dots, ?, [2-5], {a,b}, {12..15}), re:REGEX, groups (all, routers, experts, "
                  "attention, norms, embeddings), !TERM to exclude. Examples: routers; "
                  "'model.layers.{12..15}.*'; 'model.layers.*.mlp.experts.{3,7}.*'; "
                  "'all,!embeddings'. A term matching nothing is an error (default: all)");
    c->add_option("--eval-interval", o->eval_interval,
                  "every N steps (and at step 0 and the last), log per-language CE on the "
                  "held-out split of --data (0 = never)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    c->add_option("--eval-tokens", o->eval_tokens,
                  "held-out tokens scored per language at each evaluation")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_option("--compute", o->compute,
                  "GEMM precision: f32, or bf16 (mixed precision: forward and backward GEMMs on a "
                  "bf16 copy of the f32 master weights and bf16-rounded activations/gradients, f32 "
                  "accumulation; AdamW updates the f32 master, whose bf16 copy is re-rounded after "
                  "each step)")
        ->check(CLI::IsMember({"f32", "bf16"}))
        ->capture_default_str();
    c->add_option("--weights", o->weights,
                  "weight storage: f32 (f32 master weights for every parameter) or bf16-resident "
                  "(GEMM weights only in bf16, memory-mapped from a bf16 checkpoint, frozen; bf16 "
                  "compute; --trainable must select parameters with f32 values: routers, norms, "
                  "biases, an untied embedding). For parameter-efficient training of checkpoints "
                  "whose f32 weights do not fit in memory; checkpoints keep the GEMM weights in "
                  "bf16 and, by default, the trained ones in f32")
        ->check(CLI::IsMember({"f32", "bf16-resident"}))
        ->capture_default_str();
    c->add_flag("--recompute", o->recompute,
                "recompute each layer's activations in backward instead of keeping them "
                "(memory of one layer instead of all, for one extra forward of the layers)");
    add_threads_option(c, &o->threads);
    return [o, c] {
        dist::Comm& comm = dist::Comm::init();
        if (comm.size() == 1) return run_train(*o, c, comm);
        try {
            run_train(*o, c, comm);
        } catch (const std::exception& e) {
            // The other ranks would wait in the next collective forever.
            fmt::print(stderr, "error: rank {} of {}: {}\n", comm.rank(), comm.size(), e.what());
            comm.abort(1);
        }
    };
}

namespace {

void run_train(TrainOptions& opt, CLI::App* c, const dist::Comm& comm) {
    TrainOptions* o = &opt;
    const bool lead = comm.rank() == 0;
    const int64_t accum = o->grad_accum, slots = comm.size() * accum;
    {
        if (!o->config.empty()) apply_config(c, o->config);
        if (o->model.empty())
            throw UsageError("[train] --model: expected a checkpoint, found none");
        if (o->out.empty()) throw UsageError("[train] --out: expected a directory, found none");
        if (o->tokens.empty() == o->data.empty())
            throw UsageError("[train] expected exactly one of --tokens or --data");
        if (o->eval_interval > 0 && o->data.empty())
            throw UsageError(
                "[train] --eval-interval: expected --data (held-out shards to score), found "
                "--tokens");
        apply_threads(o->threads);
        Timer timer;
        int64_t resume_step = 0;
        if (!o->resume.empty()) resume_step = train::checkpoint_step(o->resume);
        const bool resident = o->weights == "bf16-resident";
        if (resident && c->count("--compute") && o->compute != "bf16")
            throw UsageError(fmt::format(
                "[train] --compute {}: expected bf16 with --weights bf16-resident (its GEMM "
                "weights exist only in bf16)",
                o->compute));
        model::OlmoeWeights w = model::load_checkpoint(
            o->resume.empty() ? o->model : o->resume,
            resident ? model::WeightsMode::Bf16Resident : model::WeightsMode::F32);
        if (resident) o->compute = "bf16";
        if (o->compute == "bf16" && !resident) w.set_compute_bf16();
        // This rank's micro-batch slots: global slot m = rank * accum + k.
        std::vector<std::unique_ptr<train::BatchSource>> owned;
        nlohmann::json data_info;
        std::string eval_dir;
        if (!o->tokens.empty()) {
            TokenMatrix ids = read_token_matrix(o->tokens, "--tokens", 0, w.config.vocab_size);
            if (ids.B % slots != 0)
                fail("train",
                     "--tokens {}: expected a row count divisible by ranks x --grad-accum = {} x "
                     "{}, found {} rows",
                     o->tokens, comm.size(), accum, ids.B);
            const int64_t B = ids.B / slots;
            if ((o->batch && o->batch != B) || (o->seq && o->seq != ids.S))
                fail("train",
                     "--batch {} --seq {}: expected the shape of --tokens [{}, {}] split into "
                     "{} micro-batch(es) of {} rows",
                     o->batch, o->seq, ids.B, ids.S, slots, B);
            TokenMatrix mask;
            if (!o->mask.empty()) {
                mask = read_token_matrix(o->mask, "--attention-mask", 0, 2);
                if (mask.B != ids.B || mask.S != ids.S)
                    fail("train", "--attention-mask {}: expected shape [{}, {}], found [{}, {}]",
                         o->mask, ids.B, ids.S, mask.B, mask.S);
            }
            const size_t rows = static_cast<size_t>(B * ids.S);
            for (int64_t k = 0; k < accum; ++k) {
                const size_t at = static_cast<size_t>(comm.rank() * accum + k) * rows;
                auto part = [&](const std::vector<int32_t>& v) {
                    return v.empty()
                               ? v
                               : std::vector<int32_t>(v.begin() + static_cast<long>(at),
                                                      v.begin() + static_cast<long>(at + rows));
                };
                owned.push_back(
                    std::make_unique<train::FixedBatch>(part(ids.data), part(mask.data), B, ids.S));
            }
        } else {
            train::DataSpec spec;
            const std::string into =
                o->prepared.empty() ? (fs::path(o->out) / "prepared").string() : o->prepared;
            // A manifest is prepared by rank 0 alone; the other ranks then find it up to date.
            if (lead) spec.dir = resolve_prepared_data(o->data, into);
            comm.barrier();
            if (!lead) spec.dir = resolve_prepared_data(o->data, into);
            spec.stages = split_commas(o->stages);
            spec.replay = split_commas(o->replay_stages);
            spec.mix.policy = data::parse_mix_policy(o->mixture);
            spec.mix.temperature = o->temperature;
            spec.mix.max_epochs = o->max_epochs;
            spec.mix.replay = o->replay;
            const int64_t B = o->batch ? o->batch : 8, S = o->seq ? o->seq : 256;
            spec.mix.budget_tokens = o->steps * slots * B * S;
            spec.seed = o->seed;
            spec.world = static_cast<int>(slots);
            for (int64_t k = 0; k < accum; ++k) {
                spec.rank = static_cast<int>(comm.rank() * accum + k);
                owned.push_back(
                    std::make_unique<train::LoaderSource>(spec, B, S, w.config.vocab_size));
            }
            const auto& src = static_cast<const train::LoaderSource&>(*owned.front());
            nlohmann::json p = nlohmann::json::object();
            for (size_t i = 0; i < src.loader().languages().size(); ++i)
                p[src.loader().languages()[i].code] = src.loader().probabilities()[i];
            data_info = {{"prepared", spec.dir}, {"probabilities", p}};
            eval_dir = spec.dir;
        }
        std::vector<train::BatchSource*> sources;
        for (const auto& s : owned)
            sources.push_back(s.get());
        const train::BatchSource* source = sources.front();
        train::TrainConfig cfg;
        cfg.lb_scope = train::parse_lb_scope(o->lb_scope);
        cfg.adam = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay};
        cfg.steps = o->steps;
        cfg.grad_clip = o->grad_clip;
        cfg.schedule = train::parse_schedule(o->schedule);
        cfg.warmup = o->warmup;
        cfg.objective = parse_objective(o->objective);
        cfg.save_every = o->save_every;
        cfg.keep = o->keep;
        cfg.out = o->out;
        // bf16-resident: the default keeps the trained (f32) parameters exact in checkpoints.
        cfg.dtype = o->dtype.empty() ? (resident ? DType::F32 : w.source_dtype)
                                     : (o->dtype == "bf16" ? DType::BF16 : DType::F32);
        cfg.trainable = o->trainable;
        cfg.recompute = o->recompute;
        int64_t trainable_tensors = static_cast<int64_t>(w.table.params().size());
        int64_t trainable_elements = w.table.total();
        if (!o->trainable.empty()) {
            const train::ParamSelection sel =
                train::select_params(w.table, o->trainable, "--trainable");
            trainable_tensors = sel.tensors;
            trainable_elements = sel.elements;
            if (lead)
                fmt::print(
                    stderr,
                    "train: --trainable '{}': {} of {} tensors, {} of {} parameters ({:.3g}%)\n",
                    o->trainable, sel.tensors, w.table.params().size(), sel.elements,
                    w.table.total(),
                    100.0 * static_cast<double>(sel.elements) /
                        static_cast<double>(w.table.total()));
        }
        std::unique_ptr<tokenizer::Tokenizer> tok;
        if (o->eval_interval > 0) {
            tok = std::make_unique<tokenizer::Tokenizer>(
                tokenizer::Tokenizer::from_file(tokenizer::default_tokenizer_path()));
            eval::EvalOptions eo;
            eo.batch = std::max<int64_t>(8, source->batch());  // fewer, fuller forwards
            eo.seq = std::max<int64_t>(2, source->seq());
            eo.max_tokens = o->eval_tokens;
            eo.bootstrap = 0;
            cfg.eval_interval = o->eval_interval;
            cfg.evaluate = [eo, &tok, eval_dir](const model::OlmoeWeights& weights) {
                nlohmann::ordered_json ce = nlohmann::ordered_json::object(), bpb = ce, n = ce;
                double loss = 0, tokens = 0;
                for (const auto& [code, docs] :
                     eval::score_documents(weights, *tok, eval_dir, eo)) {
                    const auto s = eval::summarize(docs, 0, 0);
                    ce[code] = s["ce_nats"]["value"];
                    bpb[code] = s["bits_per_byte"]["value"];
                    n[code] = s["tokens"];
                    for (const auto& d : docs)
                        loss += d.loss_nats, tokens += static_cast<double>(d.tokens);
                }
                return nlohmann::ordered_json{{"split", eo.split},
                                              {"ce", tokens > 0 ? loss / tokens : 0.0},
                                              {"ce_by_language", ce},
                                              {"bits_per_byte_by_language", bpb},
                                              {"tokens_by_language", n}};
            };
        }
        std::vector<std::string> excluded;
        if (!o->no_decay.empty()) {
            cfg.decay.assign(w.master().size(), 1);  // per element of the f32 master weights
            for (size_t i = 0; i < w.table.params().size(); ++i)
                for (const auto& pat : o->no_decay) {
                    const auto& p = w.table.params()[i];
                    if (fnmatch(pat.c_str(), p.name.c_str(), 0) == 0) {
                        if (w.master_offset(i) >= 0)
                            std::fill_n(cfg.decay.begin() + w.master_offset(i), p.numel, 0);
                        excluded.push_back(p.name);
                        break;
                    }
                }
            if (excluded.empty())
                fail("train",
                     "--no-decay: expected patterns matching parameter names (e.g. "
                     "'*norm*'), found no match");
        }
        const std::string log_path = o->log.empty() ? o->out + "/log.jsonl" : o->log;
        if (lead) {
            std::error_code ec;
            fs::create_directories(o->out, ec);
            if (ec)
                fail("train", "--out {}: cannot create the directory: {}", o->out, ec.message());
        }
        if (lead)
            write_run_json(o->out + "/run.json", "train",
                           {{"model", o->model},
                            {"config", o->config},
                            {"tokens", o->tokens},
                            {"data", o->data},
                            {"stage", o->stages},
                            {"replay_stages", o->replay_stages},
                            {"replay", o->replay},
                            {"mixture", o->mixture},
                            {"temperature", o->temperature},
                            {"max_epochs", o->max_epochs},
                            {"steps", o->steps},
                            {"lr", o->lr},
                            {"beta1", o->beta1},
                            {"beta2", o->beta2},
                            {"eps", o->eps},
                            {"weight_decay", o->weight_decay},
                            {"no_decay", o->no_decay},
                            {"grad_clip", o->grad_clip},
                            {"schedule", o->schedule},
                            {"warmup", o->warmup},
                            {"objective", o->objective},
                            {"seed", o->seed},
                            {"save_every", o->save_every},
                            {"keep", o->keep},
                            {"resume", o->resume},
                            {"trainable", o->trainable},
                            {"eval_interval", o->eval_interval},
                            {"eval_tokens", o->eval_tokens},
                            {"recompute", o->recompute},
                            {"compute", o->compute},
                            {"weights", o->weights},
                            {"grad_accum", o->grad_accum},
                            {"lb_scope", o->lb_scope},
                            {"log", log_path}},
                           {{"model_config", w.config.to_json()},
                            {"shape", {{"B", source->batch()}, {"S", source->seq()}}},
                            {"parallel",
                             {{"ranks", comm.size()},
                              {"grad_accum", accum},
                              {"global_batch_rows", slots * source->batch()}}},
                            {"data", data_info},
                            {"no_decay_params", excluded.size()},
                            {"trainable_tensors", trainable_tensors},
                            {"trainable_parameters", trainable_elements}});
        if (resume_step > 0 && lead) truncate_log(log_path, resume_step);
        std::ofstream log;
        if (lead) log.open(log_path, resume_step > 0 ? std::ios::app : std::ios::trunc);
        if (lead && !log)
            fail("train", "--log {}: cannot open for writing: {}", log_path, std::strerror(errno));
        // Checked after every line: a full disk stops the run with its reason instead of
        // training on with a log that silently lost its tail. Only rank 0 writes.
        auto log_line = [&](const std::string& line) {
            if (!lead) return;
            log << line << "\n" << std::flush;
            if (!log) fail("train", "--log {}: cannot write: {}", log_path, std::strerror(errno));
        };
        double tokens = 0, seconds = 0;
        cfg.on_eval = [&](const std::string& line) {
            log_line(line);
            const auto j = nlohmann::json::parse(line);
            std::string per;
            for (const auto& [code, ce] : j["ce_by_language"].items())
                per += fmt::format(" {} {:.3f}", code, ce.get<double>());
            fmt::print(stderr, "eval step {}: held-out ce {:.4f} ({}) in {:.1f} s\n",
                       j["step"].get<int64_t>(), j["ce"].get<double>(),
                       per.empty() ? "none" : per.substr(1), j["seconds"].get<double>());
        };
        train::train(
            w, sources, cfg,
            [&](const train::StepLog& s) {
                if (!lead) return;
                log_line(s.json());
                tokens += static_cast<double>(s.tokens);
                seconds += s.seconds;
                fmt::print(stderr, "step {}/{} loss {:.4f} ce {:.4f} lr {:.3g} {:.0f} tok/s\n",
                           s.step, cfg.steps, s.loss, s.ce, s.lr,
                           static_cast<double>(s.tokens) / s.seconds);
            },
            o->resume);
        if (lead)
            fmt::print(
                stderr,
                "train: wrote {}/final in {:.1f} s ({:.0f} tokens/s in steps), peak RSS {:.1f} "
                "MiB\n",
                o->out, timer.seconds(), seconds > 0 ? tokens / seconds : 0.0, peak_rss_mib());
    }
}

}  // namespace

}  // namespace polymoe::cli
