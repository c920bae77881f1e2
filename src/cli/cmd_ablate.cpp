// polymoe ablate: remove each language's language-specific experts (from analysis.json) inside
// the forward and measure every language's held-out ΔCE, with random-expert controls, the
// specificity of each ablation and the reuse test (eval/ablate.h). Writes interventions.json
// and <out>.run.json.
#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "core/error.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "eval/ablate.h"

namespace polymoe::cli {

namespace fs = std::filesystem;

namespace {

struct AblateCliOptions {
    std::string model, data, prepared, analysis, out, label, split = "heldout";
    std::vector<std::string> layers;
    bool drop = false, sweep = false;
    int random_seeds = 2, bootstrap = 500, top_m = 2;
    std::string selection = "specific";
    int64_t batch = 8, seq = 512, max_tokens = 0;
    uint64_t seed = 0;
    int threads = 0;
};

std::pair<int, int> parse_range(const std::string& s) {
    const auto colon = s.find(':');
    try {
        if (colon == std::string::npos) return {std::stoi(s), std::stoi(s)};
        return {std::stoi(s.substr(0, colon)), std::stoi(s.substr(colon + 1))};
    } catch (const std::exception&) {
        throw UsageError(
            fmt::format("[ablate] --layers: expected FIRST:LAST or LAYER, found "
                        "\"{}\"",
                        s));
    }
}

}  // namespace

std::function<void()> register_ablate(CLI::App& app) {
    auto o = std::make_shared<AblateCliOptions>();
    CLI::App* c = app.add_subcommand(
        "ablate", "remove language-specific experts and measure per-language held-out loss");
    c->add_option("--model", o->model, "HF checkpoint directory")->required();
    c->add_option("--data", o->data, "prepared directory or corpus manifest")->required();
    c->add_option("--prepared", o->prepared, "where --data MANIFEST is prepared (OUT.prepared/)");
    c->add_option("--analysis", o->analysis, "analysis.json from polymoe analyze")->required();
    c->add_option("--label", o->label, "which analysed trace's experts (default: the last)");
    c->add_option("--layers", o->layers, "layer ranges FIRST:LAST (repeatable; default all)")
        ->delimiter(',');
    c->add_flag("--sweep", o->sweep, "also ablate early, middle and late thirds of the layers");
    c->add_flag("--drop", o->drop, "keep routing, zero the experts' output (default: mask)");
    c->add_option("--experts", o->selection,
                  "whose experts: specific (exclusive to the language, from analysis) or top "
                  "(the language's --top-m most used per layer)")
        ->check(CLI::IsMember({"specific", "top"}))
        ->capture_default_str();
    c->add_option("--top-m", o->top_m, "experts per layer with --experts top")
        ->capture_default_str();
    c->add_option("--random-seeds", o->random_seeds, "random-expert controls per ablation")
        ->capture_default_str();
    c->add_option("--bootstrap", o->bootstrap, "bootstrap replicates over documents")
        ->capture_default_str();
    c->add_option("--seed", o->seed, "seed of bootstrap and random controls")
        ->capture_default_str();
    c->add_option("--split", o->split, "train or heldout")->capture_default_str();
    c->add_option("--batch", o->batch, "windows per forward")->capture_default_str();
    c->add_option("--seq", o->seq, "window length")->capture_default_str();
    c->add_option("--max-tokens", o->max_tokens, "at most N tokens per language (0 = all)")
        ->capture_default_str();
    c->add_option("--out", o->out, "output interventions.json")->required();
    add_threads_option(c, &o->threads);
    return [o] {
        apply_threads(o->threads);
        const std::string tok_path = tokenizer::default_tokenizer_path();
        auto tok = tokenizer::Tokenizer::from_file(tok_path);
        const std::string dir = resolve_prepared_data(
            o->data, o->prepared.empty() ? o->out + ".prepared" : o->prepared);
        nlohmann::json analysis;
        {
            std::ifstream f(o->analysis);
            if (!f) fail("ablate", "--analysis {}: cannot open", o->analysis);
            try {
                analysis = nlohmann::json::parse(f);
            } catch (const nlohmann::json::exception& e) {
                fail("ablate", "--analysis {}: expected JSON, found an error: {}", o->analysis,
                     e.what());
            }
        }
        model::OlmoeWeights w = model::load_checkpoint(o->model);
        eval::AblateOptions ao;
        ao.eval.split = o->split;
        ao.eval.batch = o->batch;
        ao.eval.seq = o->seq;
        ao.eval.max_tokens = o->max_tokens;
        ao.eval.bootstrap = o->bootstrap;
        ao.eval.seed = o->seed;
        ao.label = o->label;
        ao.drop = o->drop;
        ao.random_seeds = o->random_seeds;
        ao.selection = o->selection;
        ao.top_m = o->top_m;
        for (const auto& r : o->layers)
            ao.ranges.push_back(parse_range(r));
        const int L = static_cast<int>(w.config.num_hidden_layers);
        if (ao.ranges.empty()) ao.ranges.push_back({0, L - 1});
        if (o->sweep && L >= 3)
            for (int k = 0; k < 3; ++k)
                ao.ranges.push_back({k * L / 3, (k + 1) * L / 3 - 1});
        nlohmann::ordered_json j = eval::run_ablations(w, tok, dir, analysis, ao);
        write_output_file(o->out, j.dump(1) + "\n", "ablate");
        for (const auto& range : j["ranges"]) {
            fmt::print(stderr, "layers {}-{}:\n", range["layers"][0].get<int>(),
                       range["layers"][1].get<int>());
            for (const auto& row : range["rows"])
                if (row.contains("specificity"))
                    fmt::print(stderr,
                               "  {:<9} specificity {:+.4f} [{:+.4f}, {:+.4f}]  random {:+.4f}\n",
                               row["ablated"].get<std::string>(),
                               row["specificity"]["value"].get<double>(),
                               row["specificity"]["lo"].get<double>(),
                               row["specificity"]["hi"].get<double>(),
                               row["specificity_random"]["value"].get<double>());
        }
        fmt::print(stderr, "ablate: {} evaluations in {:.1f} s ({:.2f}/s) -> {}\n",
                   j["evaluations"].get<int64_t>(), j["seconds"].get<double>(),
                   j["evaluations_per_s"].get<double>(), o->out);
        write_run_json(o->out + ".run.json", "ablate",
                       {{"model", o->model},
                        {"data", o->data},
                        {"prepared", dir},
                        {"analysis", o->analysis},
                        {"label", o->label},
                        {"layers", o->layers},
                        {"sweep", o->sweep},
                        {"drop", o->drop},
                        {"random_seeds", o->random_seeds},
                        {"experts", o->selection},
                        {"top_m", o->top_m},
                        {"bootstrap", o->bootstrap},
                        {"seed", o->seed},
                        {"max_tokens", o->max_tokens}},
                       {});
    };
}

}  // namespace polymoe::cli
