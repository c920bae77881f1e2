// polymoe analyze: routing traces -> analysis.json (+ tidy CSV tables in <out stem>_csv/), via
// analysis::analyze (definitions and formulas in docs/analysis.md). Several --trace flags (e.g.
// base, stage1, stage2 of the same held-out tokens) are analysed side by side, with drift between
// consecutive traces. --stats takes prepare's stats.json so the script-vs-language correlation
// uses the corpus vocabulary overlap instead of the trace's own. --counts FILE.npz analyses an
// aggregate count table instead (analysis/count_table.h), in the same JSON schema.
#include <filesystem>
#include <fstream>

#include "analysis/analysis.h"
#include "analysis/count_table.h"
#include "analysis/performance.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "trace/trace_file.h"

namespace polymoe::cli {

namespace fs = std::filesystem;

namespace {

struct AnalyzeCliOptions {
    std::vector<std::string> traces, labels;
    std::string out, stats, eval, estimator = "counts", counts;
    analysis::CountTableKeys keys;
    analysis::AnalysisOptions a;
    int threads = 0;
    bool no_drift = false;
};

analysis::VocabOverlap overlap_from_stats(const std::string& path) {
    std::ifstream f(path);
    if (!f) fail("analyze", "--stats {}: cannot open", path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(f);
        const auto& m = j.at("vocab_overlap").at("matrix");
        analysis::VocabOverlap v;
        for (const auto& [code, row] : m.items())
            v.languages.push_back(code);
        for (const auto& a : v.languages)
            for (const auto& b : v.languages)
                v.values.push_back(m.at(a).at(b).get<double>());
        return v;
    } catch (const nlohmann::json::exception& e) {
        fail("analyze",
             "--stats {}: expected prepare's stats.json with vocab_overlap.matrix, "
             "found an error: {}",
             path, e.what());
    }
}

void write_outputs(const std::string& out,
                   const nlohmann::json& j,
                   std::vector<std::string>* csv,
                   std::string* csv_dir) {
    write_output_file(out, j.dump(1) + "\n", "analyze");
    *csv_dir = (fs::path(out).parent_path() / (fs::path(out).stem().string() + "_csv")).string();
    *csv = analysis::write_csv_tables(j, *csv_dir);
}

void run_counts(const AnalyzeCliOptions& o, const Timer& timer) {
    if (!o.labels.empty() && o.labels.size() != 1)
        throw UsageError(fmt::format("[analyze] --labels: expected 1 label for --counts, found {}",
                                     o.labels.size()));
    analysis::CountTable t = analysis::read_count_table(o.counts, o.keys);
    if (!o.labels.empty()) t.label = o.labels[0];
    for (const auto& n : t.notes)
        fmt::print(stderr, "analyze: note: {}\n", n);
    const nlohmann::json j = analysis::analyze_counts(t, o.a);
    std::vector<std::string> written;
    std::string csv_dir;
    write_outputs(o.out, j, &written, &csv_dir);
    const double secs = timer.seconds();
    fmt::print(stderr,
               "analyze: count table {} ({} groups, {} layers, E {}, K {}) in {:.2f} s -> {} and "
               "{} CSV tables in {}\n",
               o.counts, t.names.size(), t.layers.size(), t.E, t.K, secs, o.out, written.size(),
               csv_dir);
    write_run_json(o.out + ".run.json", "analyze",
                   {{"counts", o.counts},
                    {"counts_key", o.keys.counts},
                    {"names_key", o.keys.names},
                    {"layers_key", o.keys.layers},
                    {"top_k", o.keys.top_k},
                    {"labels", o.labels},
                    {"stats", o.stats},
                    {"specific_threshold", o.a.specific_threshold},
                    {"shared_factor", o.a.shared_factor},
                    {"reuse_top_m", o.a.reuse_top_m},
                    {"permutations", o.a.permutations},
                    {"seed", o.a.seed}},
                   {{"groups", t.names.size()}, {"seconds", secs}});
}

}  // namespace

std::function<void()> register_analyze(CLI::App& app) {
    auto o = std::make_shared<AnalyzeCliOptions>();
    CLI::App* c = app.add_subcommand(
        "analyze", "expert distributions, JSD, specialisation, reuse and drift from traces");
    c->add_option("--trace", o->traces, "routing trace (repeatable; order = checkpoint order)");
    c->add_option("--counts", o->counts,
                  "aggregate count table .npz (counts [n, L, E], names [n]) instead of traces");
    c->add_option("--counts-key", o->keys.counts, "--counts: key of the [n, L, E] table")
        ->capture_default_str();
    c->add_option("--names-key", o->keys.names, "--counts: key of the [n] group names")
        ->capture_default_str();
    c->add_option("--layers-key", o->keys.layers, "--counts: key of the [L] layer numbers")
        ->capture_default_str();
    c->add_option("--top-k", o->keys.top_k,
                  "--counts: K (default: the top_k key, or a top<K> suffix of the counts key)")
        ->check(CLI::PositiveNumber);
    c->add_option("--labels", o->labels, "one label per --trace (default: the traces' labels)")
        ->delimiter(',');
    c->add_option("--stats", o->stats, "prepare's stats.json (vocabulary overlap)");
    c->add_option("--eval", o->eval,
                  "eval.json of the same checkpoints (labels = trace labels): adds the "
                  "routing-performance correlation")
        ->check(CLI::ExistingFile);
    c->add_option("--estimator", o->estimator,
                  "distribution used for CIs and nulls: counts, weight or renorm")
        ->check(CLI::IsMember({"counts", "weight", "renorm"}))
        ->capture_default_str();
    c->add_option("--bootstrap", o->a.bootstrap, "bootstrap replicates (documents)")
        ->capture_default_str();
    c->add_option("--permutations", o->a.permutations, "language-label permutations")
        ->capture_default_str();
    c->add_option("--seed", o->a.seed, "seed of bootstrap, permutations and split halves")
        ->capture_default_str();
    c->add_option("--specific-threshold", o->a.specific_threshold,
                  "language-specific expert: share of its mass from one language")
        ->capture_default_str();
    c->add_option("--shared-factor", o->a.shared_factor,
                  "shared expert: every language at >= factor x K/E of its slots")
        ->capture_default_str();
    c->add_option("--reuse-top-m", o->a.reuse_top_m, "top-m experts for reuse (0 = K)")
        ->capture_default_str();
    c->add_flag("--no-drift", o->no_drift, "skip drift between consecutive traces");
    c->add_option("--out", o->out, "output analysis.json")->required();
    add_threads_option(c, &o->threads);
    return [o] {
        apply_threads(o->threads);
        Timer timer;
        if (o->traces.empty() == o->counts.empty())
            throw UsageError(
                fmt::format("[analyze] expected --trace FILE... or --counts FILE, "
                            "found {}",
                            o->traces.empty() ? "neither" : "both"));
        if (!o->labels.empty() && o->labels.size() != o->traces.size())
            throw UsageError(
                fmt::format("[analyze] --labels: expected {} labels (one per "
                            "--trace), found {}",
                            o->traces.size(), o->labels.size()));
        o->a.estimator = analysis::parse_estimator(o->estimator);
        o->a.drift = !o->no_drift;
        if (!o->stats.empty()) o->a.vocab_overlap = overlap_from_stats(o->stats);
        analysis::validate_options(o->a);
        if (!o->counts.empty()) {
            run_counts(*o, timer);
            return;
        }
        std::vector<trace::TraceFile> files;
        files.reserve(o->traces.size());
        int64_t records = 0;
        for (const auto& t : o->traces) {
            files.push_back(trace::TraceFile::open(t));
            if (files.back().truncated())
                fmt::print(stderr, "analyze: {}: a torn last chunk was skipped ({} tokens read)\n",
                           t, files.back().view().num_tokens());
            records += files.back().view().num_tokens() * files.back().header().num_layers();
        }
        std::vector<analysis::LabeledTrace> in;
        for (size_t i = 0; i < files.size(); ++i)
            in.push_back({o->labels.empty() ? "" : o->labels[i], &files[i].view()});
        nlohmann::json j = analysis::analyze(in, o->a);
        if (!o->eval.empty()) {
            nlohmann::json ev;
            try {
                ev = nlohmann::json::parse(std::ifstream(o->eval));
            } catch (const nlohmann::json::exception& e) {
                fail("analyze", "--eval {}: expected polymoe eval's JSON, found an error: {}",
                     o->eval, e.what());
            }
            j["routing_performance"] = analysis::routing_performance(j, ev, o->a);
            if (!j["routing_performance"]["available"].get<bool>())
                fmt::print(stderr, "analyze: routing-performance correlation unavailable: {}\n",
                           j["routing_performance"]["reason"].get<std::string>());
        }
        std::vector<std::string> written;
        std::string csv_dir;
        write_outputs(o->out, j, &written, &csv_dir);
        const double secs = timer.seconds();
        fmt::print(stderr,
                   "analyze: {} (token, layer) records of {} traces in {:.2f} s -> {} and "
                   "{} CSV tables in {}\n",
                   records, files.size(), secs, o->out, written.size(), csv_dir);
        write_run_json(o->out + ".run.json", "analyze",
                       {{"traces", o->traces},
                        {"labels", o->labels},
                        {"stats", o->stats},
                        {"eval", o->eval},
                        {"estimator", o->estimator},
                        {"bootstrap", o->a.bootstrap},
                        {"permutations", o->a.permutations},
                        {"seed", o->a.seed},
                        {"specific_threshold", o->a.specific_threshold},
                        {"shared_factor", o->a.shared_factor},
                        {"reuse_top_m", o->a.reuse_top_m},
                        {"drift", o->a.drift}},
                       {{"records", records}, {"seconds", secs}});
    };
}

}  // namespace polymoe::cli
