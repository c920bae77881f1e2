// polymoe trace: record the routing of a checkpoint over a prepared corpus into a .trace file
// (trace/capture.h, format in trace/trace_file.h and docs/formats.md). --data takes a prepared
// directory or a manifest (prepared into --prepared, default <out>.prepared/ beside the trace).
#include <filesystem>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "trace/capture.h"

namespace polymoe::cli {

namespace fs = std::filesystem;

namespace {

struct TraceCliOptions {
    std::string model, data, prepared, out, split = "heldout", label;
    std::vector<std::string> languages;
    std::vector<int> layers;
    int64_t max_tokens = 0, batch = 8, seq = 512;
    bool logits = false, bf16 = false;
    int threads = 0;
};

}  // namespace

std::function<void()> register_trace(CLI::App& app) {
    auto o = std::make_shared<TraceCliOptions>();
    CLI::App* c = app.add_subcommand("trace", "record which experts every token is routed to");
    c->add_option("--model", o->model, "HF checkpoint directory")->required();
    c->add_option("--data", o->data, "prepared directory or corpus manifest (YAML)")->required();
    c->add_option("--prepared", o->prepared,
                  "where --data MANIFEST is prepared (default OUT.prepared/)");
    c->add_option("--split", o->split, "train or heldout")
        ->check(CLI::IsMember({"train", "heldout"}))
        ->capture_default_str();
    c->add_option("--languages", o->languages, "only these languages (comma-separated)")
        ->delimiter(',');
    c->add_option("--layers", o->layers, "only these model layers (default: all)")->delimiter(',');
    c->add_option("--max-tokens", o->max_tokens, "at most N tokens per language (0 = all)")
        ->capture_default_str();
    c->add_option("--batch", o->batch, "windows per forward")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_option("--seq", o->seq, "window length (longer documents are cut)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_flag("--logits", o->logits, "also record all E router logits per layer");
    c->add_flag("--bf16", o->bf16, "compute with bf16 weights (f32 accumulation)");
    c->add_option("--label", o->label, "label of this trace (default: the model directory name)");
    c->add_option("--out", o->out, "output .trace file")->required();
    add_threads_option(c, &o->threads);
    return [o] {
        apply_threads(o->threads);
        const std::string dir = resolve_prepared_data(
            o->data, o->prepared.empty() ? o->out + ".prepared" : o->prepared);
        model::OlmoeWeights w = model::load_checkpoint(o->model);
        if (o->bf16) w.set_compute_bf16();
        trace::CaptureOptions co;
        co.split = o->split;
        co.languages = o->languages;
        co.layers = o->layers;
        co.max_tokens = o->max_tokens;
        co.batch = o->batch;
        co.seq = o->seq;
        co.logits = o->logits;
        co.label = o->label;
        if (fs::path(o->out).has_parent_path())
            fs::create_directories(fs::path(o->out).parent_path());
        trace::CaptureResult r = trace::capture_trace(w, o->model, dir, co, o->out);
        const double tps = r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0;
        fmt::print(stderr, "trace: {} tokens of {} documents in {:.2f} s ({:.0f} tokens/s) -> {}\n",
                   r.tokens, r.documents, r.seconds, tps, o->out);
        write_run_json(o->out + ".run.json", "trace",
                       {{"model", o->model},
                        {"data", o->data},
                        {"prepared", dir},
                        {"split", o->split},
                        {"languages", o->languages},
                        {"layers", o->layers},
                        {"max_tokens", o->max_tokens},
                        {"batch", o->batch},
                        {"seq", o->seq},
                        {"logits", o->logits},
                        {"bf16", o->bf16},
                        {"label", o->label}},
                       {{"model_config", w.config.to_json()},
                        {"tokens", r.tokens},
                        {"documents", r.documents},
                        {"seconds", r.seconds},
                        {"tokens_per_s", tps}});
    };
}

}  // namespace polymoe::cli
