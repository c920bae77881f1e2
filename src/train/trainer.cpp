// Training loop, optimizer/trainer state files and resume (see trainer.h).
#include "train/trainer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fault.h"
#include "core/huge_pages.h"
#include "core/profile.h"
#include "core/resources.h"
#include "core/timer.h"
#include "io/hf_checkpoint.h"
#include "io/safetensors.h"
#include "train/param_pattern.h"
#include "train/step_grad.h"

namespace polymoe::train {

namespace {

constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kStateFile = "trainer_state.json";

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("train", "{}: cannot open", path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

nlohmann::json settings_json(const model::OlmoeWeights& w,
                             const TrainConfig& cfg,
                             const BatchSource& s) {
    return {{"num_params", w.table.total()},
            {"batch", s.batch()},
            {"seq", s.seq()},
            {"beta1", cfg.adam.beta1},
            {"beta2", cfg.adam.beta2}};
}

// How a run's global batch is split: MPI ranks x micro-batch slots per rank.
struct Split {
    int ranks = 1;
    int64_t grad_accum = 1;
    int64_t slots() const { return ranks * grad_accum; }
    nlohmann::json json() const { return {{"ranks", ranks}, {"grad_accum", grad_accum}}; }
};

// The sources' state for a checkpoint (a collective: every rank calls it). One slot keeps the
// single source's own state (the format of single-process checkpoints); several slots are
// {"slots": [state of slot 0, ..., slot M-1]} in global slot order (rank-major).
nlohmann::json sources_state(const std::vector<BatchSource*>& sources, const dist::Comm& comm) {
    if (sources.size() == 1 && comm.size() == 1) return sources[0]->state();
    nlohmann::json mine = nlohmann::json::array();
    for (const BatchSource* s : sources)
        mine.push_back(s->state());
    nlohmann::json slots = nlohmann::json::array();
    for (const std::string& r : comm.allgather(mine.dump()))
        for (const auto& st : nlohmann::json::parse(r))
            slots.push_back(st);
    return {{"slots", slots}};
}

// "<HF name>[<flat index>] = <value>" for the first non-finite value of `values`, read per
// parameter at `offset[i]` (slab offsets for weights, GradLayout offsets for gradients; -1 =
// not present), or "" when all are finite. Only called once a run has already failed, so the
// scan's cost does not matter.
std::string first_non_finite(const std::vector<float>& values,
                             const model::ParamTable& table,
                             const std::vector<int64_t>& offset) {
    const auto& params = table.params();
    for (size_t i = 0; i < params.size(); ++i) {
        if (offset[i] < 0) continue;
        const float* v = values.data() + offset[i];
        for (int64_t k = 0; k < params[i].numel; ++k)
            if (!std::isfinite(v[k])) return fmt::format("{}[{}] = {}", params[i].name, k, v[k]);
    }
    return "";
}

// The loss terms that are not finite, e.g. "ce = nan, z = inf".
std::string non_finite_terms(const model::ForwardResult& r) {
    std::string out;
    for (const auto& [name, v] : {std::pair<const char*, double>{"ce", r.ce},
                                  {"aux", r.aux},
                                  {"z", r.z},
                                  {"megablocks_lb", r.megablocks_lb},
                                  {"megablocks_z", r.megablocks_z},
                                  {"olmoe_total", r.olmoe_total}})
        if (!std::isfinite(v)) out += fmt::format("{}{} = {}", out.empty() ? "" : ", ", name, v);
    return out.empty() ? "none (the objective's sum overflowed)" : out;
}

// The packed gradient/moment layout of a run and its AdamW segments.
struct Trainable {
    model::GradLayout layout;
    std::vector<Segment> segments;
    int64_t tensors = 0;
};

// Segments are in master() coordinates (model/params.h): slab offsets, or offsets in the f32
// store of bf16-resident weights, where a parameter without an f32 master cannot be trained.
Trainable make_trainable(const model::OlmoeWeights& w, const std::string& pattern) {
    const model::ParamTable& table = w.table;
    Trainable tr;
    if (pattern.empty() && !w.bf16_resident()) {
        tr.layout = model::GradLayout::all(table);
        tr.segments.push_back({0, 0, table.total()});
        tr.tensors = static_cast<int64_t>(table.params().size());
        return tr;
    }
    std::vector<uint8_t> selected(table.params().size(), 1);
    if (!pattern.empty()) {
        const ParamSelection sel = select_params(table, pattern, "--trainable");
        selected = sel.selected;
    }
    for (size_t i = 0; i < table.params().size(); ++i)
        if (selected[i] && w.master_offset(i) < 0)
            fail("train",
                 "--trainable {}: {} is held only in bf16 with --weights bf16-resident (a GEMM "
                 "weight, or a tied embedding that is also the lm head) and cannot be trained; "
                 "expected parameters with f32 values there (routers, norms, biases, an untied "
                 "embedding), or --weights f32",
                 pattern.empty() ? "(all)" : pattern, table.params()[i].name);
    tr.layout = model::GradLayout::subset(table, selected);
    for (uint8_t x : selected)
        tr.tensors += x;
    // Adjacent trainable parameters merge into one segment (all experts of a layer, say).
    for (size_t i = 0; i < table.params().size(); ++i) {
        if (tr.layout.frozen(i)) continue;
        const auto& p = table.params()[i];
        const int64_t off = tr.layout.offset[i], at = w.master_offset(i);
        if (!tr.segments.empty() && tr.segments.back().slab + tr.segments.back().numel == at &&
            tr.segments.back().offset + tr.segments.back().numel == off)
            tr.segments.back().numel += p.numel;
        else
            tr.segments.push_back({at, off, p.numel});
    }
    return tr;
}

void write_state_files(const std::string& tmp_dir,
                       const model::OlmoeWeights& w,
                       const Trainable& tr,
                       const AdamW& opt,
                       const TrainConfig& cfg,
                       const BatchSource& source,
                       const nlohmann::json& source_state,
                       const Split& split,
                       int64_t step) {
    std::vector<io::TensorToWrite> t;
    const auto& params = w.table.params();
    for (size_t i = 0; i < params.size(); ++i) {
        if (tr.layout.frozen(i)) continue;
        const auto& p = params[i];
        const int64_t off = tr.layout.offset[i];
        t.push_back({"exp_avg." + p.name, DType::F32, p.shape, opt.exp_avg().data() + off});
        t.push_back({"exp_avg_sq." + p.name, DType::F32, p.shape, opt.exp_avg_sq().data() + off});
    }
    io::write_safetensors(tmp_dir + "/" + kOptimizerFile, t);
    fault_point("checkpoint", "optimizer.safetensors written");
    nlohmann::json st = {{"step", step},
                         {"optimizer_steps", opt.steps()},
                         {"trainable", cfg.trainable},
                         {"trainable_tensors", tr.tensors},
                         {"settings", settings_json(w, cfg, source)},
                         {"parallel", split.json()},
                         {"source", source_state}};
    io::write_checkpoint_file(tmp_dir + "/" + kStateFile, st.dump(2) + "\n");
    fault_point("checkpoint", "trainer_state.json written");
}

// Restores optimizer moments, step and source state; returns the step reached.
int64_t restore_state(const std::string& dir,
                      const model::OlmoeWeights& w,
                      const Trainable& tr,
                      AdamW& opt,
                      const TrainConfig& cfg,
                      const std::vector<BatchSource*>& sources,
                      const Split& split,
                      int rank) {
    const BatchSource& source = *sources[0];
    const std::string sp = dir + "/" + kStateFile;
    nlohmann::json st;
    try {
        st = nlohmann::json::parse(read_text(sp));
    } catch (const nlohmann::json::exception& e) {
        fail("train", "--resume {}: expected JSON, found an error: {}", sp, e.what());
    }
    // Checkpoints without "parallel" were written by one process without accumulation.
    const nlohmann::json saved_split = st.value("parallel", Split{}.json());
    if (saved_split != split.json())
        fail("train",
             "--resume {}: expected a checkpoint written with {} rank(s) x --grad-accum {} (this "
             "run), found {} rank(s) x --grad-accum {}; resume with the same mpirun -np and "
             "--grad-accum",
             sp, split.ranks, split.grad_accum, saved_split.value("ranks", 0),
             saved_split.value("grad_accum", 0));
    nlohmann::json want = settings_json(w, cfg, source);
    if (st.value("settings", nlohmann::json()) != want)
        fail("train",
             "--resume {}: expected settings {}, found {} (batch, seq, betas and the "
             "model must not change when resuming)",
             sp, want.dump(), st.value("settings", nlohmann::json()).dump());
    io::SafetensorsFile f = io::SafetensorsFile::open(dir + "/" + kOptimizerFile);
    // The trainable set must be the checkpoint's: moments exist exactly for its parameters.
    const std::string saved_pattern = st.value("trainable", std::string());
    const auto& params = w.table.params();
    for (size_t i = 0; i < params.size(); ++i) {
        const bool saved = f.find("exp_avg." + params[i].name) != nullptr;
        if (saved != !tr.layout.frozen(i))
            fail("train",
                 "--trainable '{}': expected the trainable parameters of the checkpoint being "
                 "resumed ({} was trained with --trainable '{}'), found a different set: {} is "
                 "{} now but {} there; resume with --trainable '{}'",
                 cfg.trainable, dir, saved_pattern, params[i].name, saved ? "frozen" : "trainable",
                 saved ? "trainable" : "frozen", saved_pattern);
    }
    std::vector<float> m, v;
    resize_huge(m, static_cast<size_t>(tr.layout.total));
    resize_huge(v, m.size());
    for (size_t i = 0; i < params.size(); ++i) {
        if (tr.layout.frozen(i)) continue;
        const auto& p = params[i];
        const int64_t off = tr.layout.offset[i];
        for (auto [prefix, dst] : {std::pair{"exp_avg.", &m}, std::pair{"exp_avg_sq.", &v}}) {
            const io::TensorInfo* ti = f.find(prefix + p.name);
            if (!ti || ti->dtype != DType::F32 || ti->shape != p.shape)
                fail("train", "{}: expected F32 tensor {}{} of shape {}, found {}", f.path(),
                     prefix, p.name, io::shape_str(p.shape),
                     ti ? io::shape_str(ti->shape) + " " + std::string(dtype_name(ti->dtype))
                        : std::string("none"));
            std::memcpy(dst->data() + off, f.data(*ti), static_cast<size_t>(p.numel) * 4);
        }
    }
    opt.set_state(std::move(m), std::move(v), st.at("optimizer_steps").get<int64_t>());
    if (split.slots() == 1) {
        sources[0]->restore(st.at("source"));
    } else {
        const nlohmann::json& slots = st.at("source").at("slots");
        for (size_t k = 0; k < sources.size(); ++k)
            sources[k]->restore(slots.at(static_cast<size_t>(rank) * sources.size() + k));
    }
    return st.at("step").get<int64_t>();
}

// Removes all but the newest `keep` OUT/step-N directories (those written by train).
void prune_checkpoints(const std::string& out, int64_t keep) {
    namespace fs = std::filesystem;
    std::vector<std::pair<int64_t, fs::path>> steps;
    for (const auto& e : fs::directory_iterator(out)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("step-", 0) != 0 || n.find('.') != std::string::npos) continue;
        if (!fs::exists(e.path() / kStateFile)) continue;
        steps.emplace_back(std::stoll(n.substr(5)), e.path());
    }
    std::sort(steps.begin(), steps.end());
    for (size_t i = 0; i + static_cast<size_t>(keep) < steps.size(); ++i) {
        // Rename first (atomic), then delete: a kill mid-delete leaves a "step-N.pruned-PID"
        // directory, never a half-deleted step-N that looks like a checkpoint.
        fs::path doomed = steps[i].second;
        doomed += ".pruned-" + std::to_string(::getpid());
        std::error_code ec;
        fs::rename(steps[i].second, doomed, ec);
        if (ec) continue;  // someone else pruned it
        fault_point("checkpoint", "old checkpoint renamed for pruning");
        fs::remove_all(doomed, ec);
    }
}

}  // namespace

std::string StepLog::json() const {
    nlohmann::ordered_json j = {{"step", step},
                                {"lr", lr},
                                {"loss", loss},
                                {"ce", ce},
                                {"aux", aux},
                                {"z", z},
                                {"megablocks_lb", megablocks_lb},
                                {"megablocks_z", megablocks_z},
                                {"grad_norm", grad_norm},
                                {"tokens", tokens},
                                {"seconds", seconds},
                                {"rss_mib", rss_mib},
                                {"peak_rss_mib", peak_rss_mib}};
    if (!tokens_by_language.empty()) {
        nlohmann::ordered_json t = nlohmann::ordered_json::object();
        for (const auto& [code, n] : tokens_by_language)
            t[code] = n;
        j["tokens_by_language"] = t;
        nlohmann::ordered_json c = nlohmann::ordered_json::object();
        for (const auto& [code, v] : ce_by_language)
            c[code] = v;
        j["ce_by_language"] = c;
    }
    return j.dump();
}

int64_t checkpoint_step(const std::string& dir) {
    const std::string sp = dir + "/" + kStateFile;
    if (!std::filesystem::is_regular_file(sp))
        fail("train",
             "--resume {}: expected a checkpoint written by polymoe train (with {}), "
             "found none",
             dir, kStateFile);
    try {
        return nlohmann::json::parse(read_text(sp)).at("step").get<int64_t>();
    } catch (const nlohmann::json::exception& e) {
        fail("train", "--resume {}: expected a step number, found an error: {}", sp, e.what());
    }
}

std::vector<StepLog> train(model::OlmoeWeights& w,
                           BatchSource& source,
                           const TrainConfig& cfg,
                           const std::function<void(const StepLog&)>& on_step,
                           const std::string& resume_dir) {
    return train(w, std::vector<BatchSource*>{&source}, cfg, on_step, resume_dir);
}

std::vector<StepLog> train(model::OlmoeWeights& w,
                           const std::vector<BatchSource*>& sources,
                           const TrainConfig& cfg,
                           const std::function<void(const StepLog&)>& on_step,
                           const std::string& resume_dir) {
    const dist::Comm& comm = dist::Comm::world();
    const bool lead = comm.rank() == 0;  // evaluates and writes checkpoints
    const Split split{comm.size(), static_cast<int64_t>(sources.size())};
    // Gradients and moments exist for the trainable parameters only (packed).
    const Trainable tr = make_trainable(w, cfg.trainable);
    StepGradient step_grad(w, tr.layout, sources, cfg.objective, cfg.lb_scope, cfg.recompute, comm);
    AdamW opt(cfg.adam, static_cast<size_t>(tr.layout.total));
    std::vector<float> grad;
    resize_huge(grad, static_cast<size_t>(tr.layout.total));
    int64_t start = 0;
    if (!resume_dir.empty())
        start = restore_state(resume_dir, w, tr, opt, cfg, sources, split, comm.rank());
    if (start > cfg.steps)
        fail("train", "--resume {}: expected a checkpoint at or before step {}, found step {}",
             resume_dir, cfg.steps, start);
    // A failed write (disk full, read-only or missing directory) removes its temporary
    // directory and leaves earlier checkpoints as they were (io::write_hf_checkpoint); the
    // message says so, and where to resume from.
    auto save = [&](const std::string& dir, int64_t step) {
        const nlohmann::json state = sources_state(sources, comm);  // collective
        if (!lead) return;
        try {
            model::save_checkpoint(
                w, dir, cfg.dtype, 1, /*overwrite=*/true, [&](const std::string& tmp) {
                    write_state_files(tmp, w, tr, opt, cfg, *sources[0], state, split, step);
                });
        } catch (const Error& e) {
            fail("train",
                 "step {}: cannot save the checkpoint {}: {}. Earlier checkpoints are intact; "
                 "resume from the latest step-N in {}",
                 step, dir, e.what(), cfg.out);
        }
    };
    auto evaluate = [&](int64_t step) {
        if (cfg.eval_interval <= 0 || !cfg.evaluate || !lead) return;
        Timer timer;
        nlohmann::ordered_json j = {{"event", "eval"}, {"step", step}};
        const nlohmann::ordered_json fields = cfg.evaluate(w);
        for (const auto& [key, value] : fields.items())
            j[key] = value;
        j["seconds"] = timer.seconds();
        if (cfg.on_eval) cfg.on_eval(j.dump());
    };
    if (start == 0) evaluate(0);
    std::vector<StepLog> logs;
    for (int64_t t = start + 1; t <= cfg.steps; ++t) {
        Timer timer;
        StepLog log;
        log.step = t;
        log.lr = lr_at(t, cfg.steps, cfg.warmup, cfg.adam.lr, cfg.min_lr_ratio, cfg.schedule);
        // The global batch's gradient (the same bits on every rank) and losses.
        const StepStats st = step_grad.compute(grad.data());
        const model::ForwardResult& r = st.r;
        log.loss = model::objective_value(r, cfg.objective, w.config.router_aux_loss_coef);
        log.ce = r.ce;
        log.aux = r.aux;
        log.z = r.z;
        log.megablocks_lb = r.megablocks_lb;
        log.megablocks_z = r.megablocks_z;
        log.tokens_by_language = st.tokens_by_language;
        log.ce_by_language = st.ce_by_language;
        if (!std::isfinite(log.loss)) {
            // Which term, and whether the weights themselves already hold a NaN/Inf (a
            // corrupt checkpoint, or an earlier update that overflowed).
            std::vector<int64_t> master_offset;
            for (size_t i = 0; i < w.table.params().size(); ++i)
                master_offset.push_back(w.master_offset(i));
            const std::string bad_weight = first_non_finite(w.master(), w.table, master_offset);
            fail("train",
                 "step {}: the loss is {}; non-finite terms: {}; {}; stopping. The last good "
                 "checkpoint is the latest step-N in {}; lower --lr or add --warmup and resume",
                 t, log.loss, non_finite_terms(r),
                 bad_weight.empty() ? std::string("all weights are finite")
                                    : "first non-finite weight: " + bad_weight,
                 cfg.out.empty() ? "(none)" : cfg.out);
        }
        if (fault_hit("grad")) {
            // Test hook (core/fault.h): a NaN in the middle trainable parameter's gradient.
            std::vector<size_t> trainable;
            for (size_t i = 0; i < tr.layout.offset.size(); ++i)
                if (!tr.layout.frozen(i)) trainable.push_back(i);
            grad[static_cast<size_t>(tr.layout.offset[trainable[trainable.size() / 2]])] = NAN;
        }
        {
            prof::PhaseScope phase(prof::Phase::Step);
            prof::Scope ps(prof::Region::Clip);
            log.grad_norm = grad_norm(grad);
        }
        if (!std::isfinite(log.grad_norm))
            fail("train",
                 "step {}: the gradient norm is {} (loss {}); first non-finite gradient: {}; "
                 "stopping before the update. The last good checkpoint is the latest step-N in {}",
                 t, log.grad_norm, log.loss, first_non_finite(grad, w.table, tr.layout.offset),
                 cfg.out.empty() ? "(none)" : cfg.out);
        {
            prof::PhaseScope phase(prof::Phase::Step);
            prof::Scope ps(prof::Region::Optimizer);
            // Clipping (PyTorch clip_grad_norm_ semantics) happens as AdamW reads the gradients.
            opt.step(w.master(), grad, log.lr, cfg.decay, tr.segments,
                     clip_coef(log.grad_norm, cfg.grad_clip));
            // bf16 compute: the GEMMs read a bf16 copy of the f32 master weights; re-round what
            // the step changed (the trainable segments) so the next forward sees the updated
            // weights.
            for (const auto& sg : tr.segments)
                w.refresh_bf16(sg.slab, sg.numel);
        }
        log.tokens = st.tokens;
        log.seconds = timer.seconds();
        log.rss_mib = current_rss_mib();  // first: the peak read after it is >= it
        log.peak_rss_mib = peak_rss_mib();
        // With a callback the logs go only to it: keeping them as well grew memory by ~150
        // bytes a step (0.6 MiB over 4000 steps, measured with rss_mib), unbounded over a
        // long run.
        if (on_step)
            on_step(log);
        else
            logs.push_back(log);
        if (cfg.eval_interval > 0 && (t % cfg.eval_interval == 0 || t == cfg.steps)) evaluate(t);
        if (!cfg.out.empty() && cfg.save_every > 0 && t % cfg.save_every == 0 && t < cfg.steps) {
            save(fmt::format("{}/step-{}", cfg.out, t), t);
            if (cfg.keep > 0 && lead) prune_checkpoints(cfg.out, cfg.keep);
        }
    }
    if (!cfg.out.empty()) save(cfg.out + "/final", cfg.steps);
    return logs;
}

std::vector<StepLog> train_fixed_batch(model::OlmoeWeights& w,
                                       const std::vector<int32_t>& ids,
                                       const std::vector<int32_t>& mask,
                                       int64_t B,
                                       int64_t S,
                                       const TrainConfig& cfg,
                                       const std::function<void(const StepLog&)>& on_step) {
    FixedBatch source(ids, mask, B, S);
    return train(w, source, cfg, on_step);
}

}  // namespace polymoe::train
