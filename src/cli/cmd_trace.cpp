// polymoe trace: record the routing of a checkpoint over a prepared corpus into a .trace file
// (trace/capture.h, format in trace/trace_file.h and docs/formats.md). --data takes a prepared
// directory or a manifest (prepared into --prepared, default <out>.prepared/ beside the trace).
// `polymoe trace import --table FILE.npz` and `polymoe trace export --trace FILE` convert between
// traces and NumPy per-token routing tables (trace/table.h).
#include <filesystem>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "trace/capture.h"
#include "trace/table.h"

namespace polymoe::cli {

namespace fs = std::filesystem;

namespace {

struct TraceCliOptions {
    std::string model, data, prepared, out, split = "heldout", label, weights = "f32";
    std::vector<std::string> languages;
    std::vector<int> layers;
    int64_t max_tokens = 0, batch = 8, seq = 512;
    bool logits = false, bf16 = false;
    int threads = 0;
};

struct TableCliOptions {
    std::string table, trace, out;
    int64_t chunk_tokens = 65536;
    bool compress = false;
};

double mb_per_s(uint64_t bytes, double seconds) {
    return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0;
}

// The import/export subcommands of `trace`; returns a function that runs whichever was given
// (and reports whether one was).
std::function<bool()> register_table_commands(CLI::App* c) {
    auto o = std::make_shared<TableCliOptions>();
    CLI::App* imp = c->add_subcommand(
        "import", "per-token routing table (.npz: lang, lang_names, topk_ids, ...) -> .trace");
    imp->add_option("--table", o->table, "NumPy .npz routing table (schema: docs/formats.md)")
        ->required();
    imp->add_option("--out", o->out, "output .trace file")->required();
    imp->add_option("--chunk-tokens", o->chunk_tokens, "tokens per trace chunk")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    CLI::App* exp = c->add_subcommand("export", ".trace -> per-token routing table (.npz)");
    exp->add_option("--trace", o->trace, "routing trace")->required();
    exp->add_option("--out", o->out, "output .npz file")->required();
    exp->add_flag("--compress", o->compress, "deflate the members (numpy.savez_compressed)");
    return [o, imp, exp] {
        if (imp->parsed()) {
            trace::TableImportResult r = trace::import_table(o->table, o->out, o->chunk_tokens);
            for (const auto& n : r.notes)
                fmt::print(stderr, "trace import: note: {}\n", n);
            fmt::print(stderr,
                       "trace import: {} tokens, {} documents, {} groups, {} layers, K {}, E {} "
                       "in {:.2f} s ({:.0f} MB/s of .npz) -> {}\n",
                       r.tokens, r.documents, r.groups, r.layers, r.top_k, r.num_experts, r.seconds,
                       mb_per_s(r.npz_bytes, r.seconds), o->out);
            write_run_json(o->out + ".run.json", "trace import",
                           {{"table", o->table}, {"chunk_tokens", o->chunk_tokens}},
                           {{"tokens", r.tokens},
                            {"documents", r.documents},
                            {"groups", r.groups},
                            {"layers", r.layers},
                            {"top_k", r.top_k},
                            {"num_experts", r.num_experts},
                            {"notes", r.notes},
                            {"npz_bytes", r.npz_bytes},
                            {"trace_bytes", r.trace_bytes},
                            {"seconds", r.seconds},
                            {"npz_mb_per_s", mb_per_s(r.npz_bytes, r.seconds)}});
            return true;
        }
        if (exp->parsed()) {
            trace::TableExportResult r = trace::export_table(o->trace, o->out, o->compress);
            fmt::print(stderr,
                       "trace export: {} tokens in {:.2f} s ({:.0f} MB/s of .trace) -> {}\n",
                       r.tokens, r.seconds, mb_per_s(r.trace_bytes, r.seconds), o->out);
            write_run_json(o->out + ".run.json", "trace export",
                           {{"trace", o->trace}, {"compress", o->compress}},
                           {{"tokens", r.tokens},
                            {"trace_bytes", r.trace_bytes},
                            {"npz_bytes", r.npz_bytes},
                            {"seconds", r.seconds},
                            {"trace_mb_per_s", mb_per_s(r.trace_bytes, r.seconds)}});
            return true;
        }
        return false;
    };
}

}  // namespace

std::function<void()> register_trace(CLI::App& app) {
    auto o = std::make_shared<TraceCliOptions>();
    CLI::App* c = app.add_subcommand(
        "trace", "record which experts every token is routed to (or: trace import / export)");
    c->require_subcommand(0, 1);
    // --model, --data and --out are required when recording (checked below): not by CLI11, so
    // that `trace import` / `trace export` parse without them.
    c->add_option("--model", o->model, "HF checkpoint directory (required)");
    c->add_option("--data", o->data, "prepared directory or corpus manifest (YAML) (required)");
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
    add_weights_option(c, &o->weights);
    c->add_option("--label", o->label, "label of this trace (default: the model directory name)");
    c->add_option("--out", o->out, "output .trace file (required)");
    add_threads_option(c, &o->threads);
    std::function<bool()> table_commands = register_table_commands(c);
    return [o, table_commands] {
        apply_threads(o->threads);
        if (table_commands()) return;
        for (const auto& [flag, value] :
             {std::pair<const char*, const std::string*>{"--model", &o->model},
              {"--data", &o->data},
              {"--out", &o->out}})
            if (value->empty())
                throw UsageError(
                    fmt::format("[trace] {}: expected it (required when recording "
                                "a trace), found nothing",
                                flag));
        const std::string dir = resolve_prepared_data(
            o->data, o->prepared.empty() ? o->out + ".prepared" : o->prepared);
        // bf16-resident weights compute in bf16: --bf16 is implied.
        o->bf16 = o->bf16 || o->weights == "bf16-resident";
        model::OlmoeWeights w = load_weights(o->model, o->weights, o->bf16);
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
                        {"weights", o->weights},
                        {"label", o->label}},
                       {{"model_config", w.config.to_json()},
                        {"tokens", r.tokens},
                        {"documents", r.documents},
                        {"seconds", r.seconds},
                        {"tokens_per_s", tps}});
    };
}

}  // namespace polymoe::cli
