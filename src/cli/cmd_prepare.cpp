// polymoe prepare: corpus manifest -> per-language token shards + stats.json (data/prepare.h).
// Prints a per-language table (documents, tokens, tokens/char, drops) and the throughput; run.json
// records the options and timing, so stats.json itself stays byte-identical across reruns.
#include <filesystem>

#include "cli/common.h"
#include "core/error.h"
#include "data/prepare.h"

namespace polymoe::cli {

namespace {

struct PrepareCliOptions {
    std::string manifest, out, tokenizer;
    bool dedup = true, repetition = false;  // used only when given on the command line
    bool force = false;
    int64_t max_shard_tokens = int64_t{1} << 30;
    int threads = 0;
};

}  // namespace

std::function<void()> register_prepare(CLI::App& app) {
    auto o = std::make_shared<PrepareCliOptions>();
    CLI::App* c = app.add_subcommand(
        "prepare", "tokenize a corpus manifest into per-language token shards and stats.json");
    c->add_option("--manifest", o->manifest, "corpus manifest (YAML)")->required();
    c->add_option("--out", o->out, "output directory (shards, stats.json, run.json)")->required();
    c->add_option("--tokenizer", o->tokenizer, "tokenizer.json (default: the shipped OLMo one)");
    CLI::Option* dedup =
        c->add_flag("--dedup,!--no-dedup", o->dedup,
                    "drop exact duplicate documents (default: the manifest's prepare.dedup, true)");
    CLI::Option* rep = c->add_flag(
        "--repetition-filter,!--no-repetition-filter", o->repetition,
        "drop documents failing the Gopher repetition rules (default: the manifest's, false)");
    c->add_option("--max-shard-tokens", o->max_shard_tokens, "start a new shard beyond this")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    c->add_flag("--force", o->force, "redo even when the inputs are unchanged");
    add_threads_option(c, &o->threads);
    return [o, dedup, rep] {
        apply_threads(o->threads);
        data::Manifest m = data::load_manifest(o->manifest);
        data::PrepareOptions po;
        po.out_dir = o->out;
        po.tokenizer_path =
            o->tokenizer.empty() ? tokenizer::default_tokenizer_path() : o->tokenizer;
        po.dedup = dedup->count() > 0 ? o->dedup : m.dedup;
        po.repetition_filter = rep->count() > 0 ? o->repetition : m.repetition_filter;
        po.max_shard_tokens = o->max_shard_tokens;
        po.force = o->force;
        tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_file(po.tokenizer_path);
        data::PrepareResult r = data::prepare(m, tok, po);
        if (r.up_to_date) {
            fmt::print(stderr, "prepare: {} is up to date (inputs unchanged; --force redoes it)\n",
                       o->out);
            return;
        }
        fmt::print(stderr, "{:<10} {:>9} {:>10} {:>9} {:>8} {:>8}  dropped\n", "language",
                   "documents", "tokens", "heldout", "tok/chr", "tok/byte");
        for (const auto& [code, l] : r.stats["languages"].items()) {
            std::string drops;
            for (const auto& [k, v] : l["dropped"].items())
                if (v.get<int64_t>() > 0) drops += fmt::format(" {}={}", k, v.get<int64_t>());
            fmt::print(stderr, "{:<10} {:>9} {:>10} {:>9} {:>8.3f} {:>8.3f} {}\n", code,
                       l["total"]["documents"].get<int64_t>(), l["total"]["tokens"].get<int64_t>(),
                       l["heldout"]["tokens"].get<int64_t>(),
                       l["total"]["tokens_per_char"].get<double>(),
                       l["total"]["tokens_per_byte"].get<double>(), drops.empty() ? "-" : drops);
        }
        double mbps = r.seconds > 0 ? static_cast<double>(r.bytes_read) / 1e6 / r.seconds : 0;
        fmt::print(stderr, "prepare: {:.2f} MB of text in {:.2f} s ({:.2f} MB/s) -> {}\n",
                   static_cast<double>(r.bytes_read) / 1e6, r.seconds, mbps, o->out);
        write_run_json((std::filesystem::path(o->out) / "run.json").string(), "prepare",
                       {{"manifest", o->manifest},
                        {"tokenizer", po.tokenizer_path},
                        {"dedup", po.dedup},
                        {"repetition_filter", po.repetition_filter},
                        {"max_shard_tokens", po.max_shard_tokens}},
                       {{"seconds", r.seconds},
                        {"text_bytes", r.bytes_read},
                        {"mb_per_s", mbps},
                        {"tokens", r.stats["total"]["tokens"]}});
    };
}

}  // namespace polymoe::cli
