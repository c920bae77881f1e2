// Per-language evaluation (see eval.h).
#include "eval/eval.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "data/prepare.h"
#include "data/shard.h"
#include "model/olmoe.h"

namespace polymoe::eval {

std::vector<int64_t> token_byte_lengths(const tokenizer::Tokenizer& tok) {
    const int32_t V = tok.vocab_size();
    std::vector<int64_t> len(static_cast<size_t>(V), 0);
    for (int32_t id = 0; id < V; ++id) {
        // Byte-level BPE: one code point of the spelling per byte of text.
        const std::string& s = tok.id_to_token(id);
        int64_t cps = 0;
        for (unsigned char c : s)
            cps += (c & 0xC0) != 0x80;
        len[static_cast<size_t>(id)] = cps;
    }
    for (const auto& a : tok.added_tokens())
        if (a.id >= 0 && a.id < V)
            len[static_cast<size_t>(a.id)] = static_cast<int64_t>(a.content.size());
    return len;
}

std::vector<std::pair<std::string, std::vector<DocScore>>> score_documents(
    const model::OlmoeWeights& w,
    const tokenizer::Tokenizer& tok,
    const std::string& prepared_dir,
    const EvalOptions& o,
    const model::Intervention* intervention) {
    const auto& c = w.config;
    nlohmann::json stats = data::read_prepared_stats(prepared_dir);
    const int64_t eos = stats.value("eos_id", -1);
    if (eos < 0 || eos >= c.vocab_size)
        fail("eval", "{}/stats.json: eos_id: expected an id below vocab_size {}, found {}",
             prepared_dir, c.vocab_size, eos);
    if (o.seq < 2) fail("eval", "--seq: expected at least 2, found {}", o.seq);
    const std::vector<int64_t> bytes_of = token_byte_lengths(tok);
    const std::vector<std::string> codes =
        data::select_languages(stats, o.languages, prepared_dir, "eval");
    struct Window {
        size_t doc;
        int64_t begin, n;  // predicted tokens [begin, begin + n) of the document
    };
    std::vector<std::pair<std::string, std::vector<DocScore>>> out;
    model::Activations a;
    for (const auto& code : codes) {
        data::ShardSet s = data::ShardSet::open(prepared_dir, code, o.split);
        if (s.meta().vocab_size > c.vocab_size)
            fail("eval",
                 "{}: expected token ids below the model's vocab_size {}, found a "
                 "tokenizer with {} ids",
                 s.shards().front().path(), c.vocab_size, s.meta().vocab_size);
        if (s.meta().vocab_size != tok.vocab_size())
            fail("eval", "{}: expected shards made with this tokenizer ({} ids), found {} ids",
                 s.shards().front().path(), tok.vocab_size(), s.meta().vocab_size);
        std::vector<DocScore> docs;
        std::vector<int64_t> doc_index;  // shard document of docs[i]
        std::vector<Window> windows;
        int64_t budget = o.max_tokens > 0 ? o.max_tokens : INT64_MAX;
        for (int64_t d = 0; d < s.num_documents() && budget > 0; ++d) {
            const int64_t len =
                std::min<int64_t>(static_cast<int64_t>(s.document(d).size()), budget);
            if (len == 0) continue;
            budget -= len;
            for (int64_t b = 0; b < len; b += o.seq - 1)
                windows.push_back({docs.size(), b, std::min(o.seq - 1, len - b)});
            docs.push_back({});
            doc_index.push_back(d);
        }
        Progress progress("eval " + code, static_cast<double>(windows.size()), "windows");
        for (size_t w0 = 0; w0 < windows.size(); w0 += static_cast<size_t>(o.batch)) {
            const size_t w1 = std::min(windows.size(), w0 + static_cast<size_t>(o.batch));
            const int64_t B = static_cast<int64_t>(w1 - w0);
            int64_t S = 0;
            for (size_t i = w0; i < w1; ++i)
                S = std::max(S, windows[i].n + 1);
            // Round the padded length up to a multiple of 64: the
            // GEMM primitives are compiled per row count, so a few fixed shapes instead of one
            // per batch avoid recompiling them (padding is masked and never recorded).
            S = std::min<int64_t>(o.seq, (S + 63) / 64 * 64);
            std::vector<int32_t> ids(static_cast<size_t>(B * S), 0), mask(ids.size(), 0);
            for (size_t i = w0; i < w1; ++i) {
                const Window& wi = windows[i];
                auto doc = s.document(doc_index[wi.doc]);
                const int64_t row = static_cast<int64_t>(i - w0) * S;
                ids[static_cast<size_t>(row)] = static_cast<int32_t>(eos);
                mask[static_cast<size_t>(row)] = 1;
                for (int64_t t = 0; t < wi.n; ++t) {
                    ids[static_cast<size_t>(row + 1 + t)] = static_cast<int32_t>(doc[wi.begin + t]);
                    mask[static_cast<size_t>(row + 1 + t)] = 1;
                }
            }
            if (a.B != B || a.S != S) model::allocate_activations(a, c, B, S, /*logits=*/true);
            model::olmoe_forward(a, w, ids.data(), mask.data(), B, S, nullptr, intervention);
            for (size_t i = w0; i < w1; ++i) {
                const Window& wi = windows[i];
                const int64_t row = static_cast<int64_t>(i - w0) * S;
                DocScore& ds = docs[wi.doc];
                // Position t of the row predicts token t + 1: rows 0 .. n-1 predict the window.
                for (int64_t t = 0; t < wi.n; ++t) {
                    ds.loss_nats += a.ce_rows[static_cast<size_t>(row + t)];
                    ds.bytes +=
                        bytes_of[static_cast<size_t>(ids[static_cast<size_t>(row + 1 + t)])];
                }
                ds.tokens += wi.n;
            }
            progress.update(static_cast<double>(w1));
        }
        progress.finish();
        out.emplace_back(code, std::move(docs));
    }
    return out;
}

namespace {

// {"value", "lo", "hi", "n_boot"}: the 2.5% and 97.5% order statistics of the replicates (the
// point value itself when there are none).
nlohmann::ordered_json interval_json(double point, std::vector<double> v) {
    nlohmann::ordered_json j = {{"value", point}};
    if (v.empty()) {
        j["lo"] = j["hi"] = point;
    } else {
        std::sort(v.begin(), v.end());
        auto q = [&](double p) {
            return v[static_cast<size_t>(
                std::min<double>(v.size() - 1, std::floor(p * static_cast<double>(v.size()))))];
        };
        j["lo"] = q(0.025);
        j["hi"] = q(0.975);
    }
    j["n_boot"] = static_cast<int>(v.size());
    return j;
}

}  // namespace

nlohmann::ordered_json summarize(const std::vector<DocScore>& docs, int n_boot, uint64_t seed) {
    auto stat = [](double loss, double tokens, double bytes) {
        const double ce = tokens > 0 ? loss / tokens : 0.0;
        return std::array<double, 3>{ce, std::exp(ce),
                                     bytes > 0 ? loss / std::log(2.0) / bytes : 0.0};
    };
    double L = 0, T = 0, Bt = 0;
    for (const auto& d : docs)
        L += d.loss_nats, T += static_cast<double>(d.tokens), Bt += static_cast<double>(d.bytes);
    const auto point = stat(L, T, Bt);
    std::vector<std::array<double, 3>> reps;
    const uint64_t key = rng_key(seed, "eval-bootstrap");
    const size_t n = docs.size();
    for (int b = 0; b < n_boot && n > 0; ++b) {
        double l = 0, t = 0, by = 0;
        for (size_t i = 0; i < n; ++i) {
            const size_t j = std::min(
                n - 1, static_cast<size_t>(rng_uniform(key, static_cast<uint64_t>(b) * n + i) *
                                           static_cast<double>(n)));
            l += docs[j].loss_nats, t += static_cast<double>(docs[j].tokens),
                by += static_cast<double>(docs[j].bytes);
        }
        reps.push_back(stat(l, t, by));
    }
    auto ci = [&](int k) {
        std::vector<double> v;
        for (const auto& r : reps)
            v.push_back(r[static_cast<size_t>(k)]);
        return interval_json(point[static_cast<size_t>(k)], std::move(v));
    };
    return {{"documents", static_cast<int64_t>(n)},
            {"tokens", static_cast<int64_t>(T)},
            {"bytes", static_cast<int64_t>(Bt)},
            {"ce_nats", ci(0)},
            {"perplexity", ci(1)},
            {"bits_per_byte", ci(2)}};
}

nlohmann::ordered_json summarize_delta(const std::vector<DocScore>& base,
                                       const std::vector<DocScore>& other,
                                       int n_boot,
                                       uint64_t seed) {
    const size_t n = base.size();
    if (other.size() != n)
        fail("eval", "paired documents: expected {} scores, found {}", n, other.size());
    for (size_t i = 0; i < n; ++i)
        if (base[i].tokens != other[i].tokens || base[i].bytes != other[i].bytes)
            fail("eval",
                 "paired documents: document {} has {} tokens in one run and {} in the "
                 "other",
                 i, base[i].tokens, other[i].tokens);
    // delta of (CE per token, bits per byte) for a resampled multiset of documents.
    auto stat = [](double lb, double lo, double t, double by) {
        return std::array<double, 2>{t > 0 ? (lo - lb) / t : 0.0,
                                     by > 0 ? (lo - lb) / std::log(2.0) / by : 0.0};
    };
    double LB = 0, LO = 0, T = 0, B = 0;
    for (size_t i = 0; i < n; ++i)
        LB += base[i].loss_nats, LO += other[i].loss_nats, T += static_cast<double>(base[i].tokens),
            B += static_cast<double>(base[i].bytes);
    const auto point = stat(LB, LO, T, B);
    std::vector<double> reps[2];
    const uint64_t key = rng_key(seed, "eval-delta-bootstrap");
    for (int b = 0; b < n_boot && n > 0; ++b) {
        double lb = 0, lo = 0, t = 0, by = 0;
        for (size_t i = 0; i < n; ++i) {
            const size_t j = std::min(
                n - 1, static_cast<size_t>(rng_uniform(key, static_cast<uint64_t>(b) * n + i) *
                                           static_cast<double>(n)));
            lb += base[j].loss_nats, lo += other[j].loss_nats,
                t += static_cast<double>(base[j].tokens), by += static_cast<double>(base[j].bytes);
        }
        const auto r = stat(lb, lo, t, by);
        reps[0].push_back(r[0]);
        reps[1].push_back(r[1]);
    }
    return {{"delta_ce_nats", interval_json(point[0], std::move(reps[0]))},
            {"delta_bits_per_byte", interval_json(point[1], std::move(reps[1]))}};
}

}  // namespace polymoe::eval
