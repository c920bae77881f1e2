// polymoe eval: per-language cross-entropy, perplexity and bits per byte of one or more
// checkpoints on prepared held-out text, with bootstrap CIs over documents (eval/eval.h). Several
// --model flags give one table across checkpoints (base / stage 1 / stage 2). Writes eval.json,
// a tidy eval.csv beside it, and <out>.run.json. With --mask/--drop/--steer/--force every model
// is also scored under that routing intervention (eval/intervention_spec.h) and each language
// gets the paired change in CE and bits per byte.
#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "core/error.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "eval/eval.h"
#include "eval/intervention_spec.h"

namespace polymoe::cli {

namespace fs = std::filesystem;

namespace {

struct EvalCliOptions {
    std::vector<std::string> models, labels, languages;
    std::string data, prepared, out, split = "heldout";
    int64_t batch = 8, seq = 512, max_tokens = 0;
    int bootstrap = 1000;
    uint64_t seed = 0;
    int threads = 0;
    eval::InterventionSpecs iv;
};

std::string label_of(const std::string& model) {
    fs::path p = fs::path(model).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    // ".../stage1/final" -> "stage1"
    if (p.filename() == "final" && p.has_parent_path()) return p.parent_path().filename().string();
    return p.filename().string();
}

}  // namespace

std::function<void()> register_eval(CLI::App& app) {
    auto o = std::make_shared<EvalCliOptions>();
    CLI::App* c = app.add_subcommand(
        "eval", "per-language cross-entropy, perplexity and bits per byte with bootstrap CIs");
    c->add_option("--model", o->models, "HF checkpoint directory (repeatable)")->required();
    c->add_option("--labels", o->labels, "one label per --model (default: directory names)")
        ->delimiter(',');
    c->add_option("--data", o->data, "prepared directory or corpus manifest (YAML)")->required();
    c->add_option("--prepared", o->prepared, "where --data MANIFEST is prepared (OUT.prepared/)");
    c->add_option("--split", o->split, "train or heldout")
        ->check(CLI::IsMember({"train", "heldout"}))
        ->capture_default_str();
    c->add_option("--languages", o->languages, "only these languages")->delimiter(',');
    c->add_option("--batch", o->batch, "windows per forward")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_option("--seq", o->seq, "window length including the leading EOS")
        ->check(CLI::Range(2, 1 << 20))
        ->capture_default_str();
    c->add_option("--max-tokens", o->max_tokens, "at most N tokens per language (0 = all)")
        ->capture_default_str();
    c->add_option("--bootstrap", o->bootstrap, "bootstrap replicates over documents")
        ->capture_default_str();
    c->add_option("--seed", o->seed, "bootstrap seed")->capture_default_str();
    c->add_option("--mask", o->iv.mask,
                  "remove experts from the top-k candidates: E[,E...][@FIRST:LAST] (repeatable)");
    c->add_option("--drop", o->iv.drop,
                  "keep routing, zero the experts' outputs: E[,E...][@FIRST:LAST] (repeatable)");
    c->add_option("--steer", o->iv.steer,
                  "add LAMBDA x std(router logits) to experts' logits: E=LAMBDA[,...][@FIRST:LAST] "
                  "(repeatable)");
    c->add_option("--force", o->iv.force,
                  "route every token to these experts (at least K): E,E[,...][@FIRST:LAST] "
                  "(repeatable)");
    c->add_option("--out", o->out, "output eval.json")->required();
    add_threads_option(c, &o->threads);
    return [o] {
        apply_threads(o->threads);
        if (!o->labels.empty() && o->labels.size() != o->models.size())
            throw UsageError(
                fmt::format("[eval] --labels: expected {} labels (one per --model), "
                            "found {}",
                            o->models.size(), o->labels.size()));
        const std::string tok_path = tokenizer::default_tokenizer_path();
        auto tok = tokenizer::Tokenizer::from_file(tok_path);
        const std::string dir = resolve_prepared_data(
            o->data, o->prepared.empty() ? o->out + ".prepared" : o->prepared);
        eval::EvalOptions eo;
        eo.split = o->split;
        eo.languages = o->languages;
        eo.batch = o->batch;
        eo.seq = o->seq;
        eo.max_tokens = o->max_tokens;
        eo.bootstrap = o->bootstrap;
        eo.seed = o->seed;
        nlohmann::ordered_json models = nlohmann::ordered_json::array();
        std::string csv = "model,language,documents,tokens,bytes,metric,value,lo,hi\n";
        for (size_t i = 0; i < o->models.size(); ++i) {
            const std::string label = o->labels.empty() ? label_of(o->models[i]) : o->labels[i];
            model::OlmoeWeights w = model::load_checkpoint(o->models[i]);
            // Specs are checked against this model before any scoring.
            model::Intervention iv;
            if (!o->iv.empty())
                iv = eval::parse_interventions(o->iv, w.config.num_hidden_layers,
                                               w.config.num_experts, w.config.num_experts_per_tok);
            auto scores = eval::score_documents(w, tok, dir, eo);
            std::vector<std::pair<std::string, std::vector<eval::DocScore>>> intervened;
            if (!o->iv.empty()) intervened = eval::score_documents(w, tok, dir, eo, &iv);
            nlohmann::ordered_json langs = nlohmann::ordered_json::object();
            for (size_t li = 0; li < scores.size(); ++li) {
                const auto& [code, docs] = scores[li];
                auto s = eval::summarize(docs, o->bootstrap, o->seed);
                if (!intervened.empty()) {
                    s["intervened"] = eval::summarize(intervened[li].second, o->bootstrap, o->seed);
                    auto d =
                        eval::summarize_delta(docs, intervened[li].second, o->bootstrap, o->seed);
                    s["delta_ce_nats"] = d["delta_ce_nats"];
                    s["delta_bits_per_byte"] = d["delta_bits_per_byte"];
                    fmt::print(stderr,
                               "{:<10} {:<9} intervention: delta ce {:+.4f} [{:+.4f}, "
                               "{:+.4f}] nats\n",
                               label, code, d["delta_ce_nats"]["value"].get<double>(),
                               d["delta_ce_nats"]["lo"].get<double>(),
                               d["delta_ce_nats"]["hi"].get<double>());
                }
                for (const char* m : {"ce_nats", "perplexity", "bits_per_byte"})
                    csv += fmt::format("{},{},{},{},{},{},{},{},{}\n", label, code,
                                       s["documents"].get<int64_t>(), s["tokens"].get<int64_t>(),
                                       s["bytes"].get<int64_t>(), m, s[m]["value"].get<double>(),
                                       s[m]["lo"].get<double>(), s[m]["hi"].get<double>());
                fmt::print(stderr, "{:<10} {:<9} ce {:.4f} [{:.4f}, {:.4f}] nats  bpb {:.4f}\n",
                           label, code, s["ce_nats"]["value"].get<double>(),
                           s["ce_nats"]["lo"].get<double>(), s["ce_nats"]["hi"].get<double>(),
                           s["bits_per_byte"]["value"].get<double>());
                langs[code] = s;
            }
            models.push_back({{"label", label}, {"path", o->models[i]}, {"languages", langs}});
        }
        nlohmann::ordered_json out = {
            {"schema_version", 1},
            {"kind", "polymoe.eval"},
            {"data", dir},
            {"split", o->split},
            {"definitions",
             {{"ce_nats",
               "mean cross-entropy per predicted token (natural log); each document "
               "is scored after an EOS, in windows of --seq tokens"},
              {"perplexity", "exp(ce_nats)"},
              {"bits_per_byte",
               "sum of cross-entropy / ln 2 / UTF-8 bytes of the predicted "
               "tokens"},
              {"ci",
               "95% percentile bootstrap over documents (ratio recomputed per "
               "replicate)"}}},
            {"bootstrap", {{"replicates", o->bootstrap}, {"seed", o->seed}}},
            {"models", models}};
        if (!o->iv.empty()) {
            out["intervention"] = {{"mask", o->iv.mask},
                                   {"drop", o->iv.drop},
                                   {"steer", o->iv.steer},
                                   {"force", o->iv.force},
                                   {"note",
                                    "languages[code] describe the unmodified model; "
                                    "intervened = the same documents under the intervention; "
                                    "delta_* = intervened - unmodified (paired bootstrap)"}};
        }
        write_output_file(o->out, out.dump(2) + "\n", "eval");
        fs::path csv_path = fs::path(o->out).replace_extension(".csv");
        write_output_file(csv_path.string(), csv, "eval");
        write_run_json(o->out + ".run.json", "eval",
                       {{"models", o->models},
                        {"labels", o->labels},
                        {"data", o->data},
                        {"prepared", dir},
                        {"split", o->split},
                        {"languages", o->languages},
                        {"batch", o->batch},
                        {"seq", o->seq},
                        {"max_tokens", o->max_tokens},
                        {"bootstrap", o->bootstrap},
                        {"seed", o->seed},
                        {"mask", o->iv.mask},
                        {"drop", o->iv.drop},
                        {"steer", o->iv.steer},
                        {"force", o->iv.force}},
                       {});
        fmt::print(stderr, "eval: wrote {} and {}\n", o->out, csv_path.string());
    };
}

}  // namespace polymoe::cli
