// The streaming pass of trace_stats.h. Two steps:
//  1. a serial pre-scan of the small per-token columns (language, document, passage, token id)
//     that numbers units and documents, checks one language per document, and lists each
//     language's token runs (chunk, begin, end, unit) in trace order;
//  2. a parallel pass over (layer, language) tiles reading the expert and weight columns. A tile
//     owns its output cells, so no per-thread partials or reductions are needed and the sums are
//     identical for every thread count. Weight sums use two-level (blocked) summation: blocks of
//     kBlock tokens are summed from zero and then added to the unit's row, so the rounding error
//     grows with n/kBlock + kBlock rather than n.
#include "analysis/trace_stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>

#include "core/check.h"
#include "core/error.h"
#include "core/parallel.h"

namespace polymoe::analysis {

namespace {

constexpr std::string_view kComponent = "analysis";
constexpr int64_t kBlock = 256;             // tokens per summation block
constexpr uint32_t kMaxTokenId = 1u << 26;  // dense token-id table bound (256 MiB of int32)
constexpr int64_t kMaxLangTokens = INT64_C(4294967295);  // co-activation counts are uint32

struct Run {
    int32_t chunk = 0;
    int64_t begin = 0, end = 0;  // token range within the chunk
    int64_t unit = 0;
};

// Result of the pre-scan; languages are header indices here.
struct PreScan {
    std::vector<Unit> units;
    std::vector<int64_t> doc_ids;
    std::vector<int> doc_lang;
    std::vector<std::vector<Run>> runs;  // [header language]
    std::vector<int64_t> lang_tokens;    // [header language]
    std::vector<int64_t> chunk_offset;   // global index of each chunk's first token
    std::vector<int32_t> tok_compact;    // [N] compact token index
    std::vector<uint32_t> vocab;         // compact -> token id
    std::vector<int64_t> occurrences;    // compact -> occurrences
    int words = 0;                       // 64-bit words per language bitset
    std::vector<uint64_t> presence;      // [compact][words], bit = header language
};

void validate_view(const trace::TraceView& v) {
    const auto& h = v.header;
    if (h.num_experts < 1 || h.num_experts > 65536)
        fail(kComponent, "trace '{}': expected 1..65536 experts, found {}", h.label, h.num_experts);
    if (h.top_k < 1 || h.top_k > h.num_experts)
        fail(kComponent, "trace '{}': expected top_k in 1..{} (E), found {}", h.label,
             h.num_experts, h.top_k);
    if (h.layers.empty())
        fail(kComponent, "trace '{}': expected recorded layers, found none", h.label);
    if (h.languages.empty())
        fail(kComponent, "trace '{}': expected a language table, found none", h.label);
    if (h.languages.size() > 65536)
        fail(kComponent, "trace '{}': expected at most 65536 languages, found {}", h.label,
             h.languages.size());
    int64_t n = 0;
    for (size_t c = 0; c < v.chunks.size(); ++c) {
        const auto& ch = v.chunks[c];
        if (ch.n < 0) fail(kComponent, "trace '{}': chunk {} has {} tokens", h.label, c, ch.n);
        if (ch.n > 0 && (!ch.lang || !ch.doc || !ch.passage || !ch.position || !ch.token ||
                         !ch.expert || !ch.weight))
            fail(kComponent, "trace '{}': chunk {}: expected all columns, found a null column",
                 h.label, c);
        n += ch.n;
    }
    if (n == 0) fail(kComponent, "trace '{}': expected tokens, found an empty trace", h.label);
}

PreScan prescan(const trace::TraceView& v) {
    const auto& h = v.header;
    const int nLh = static_cast<int>(h.languages.size());
    PreScan p;
    p.runs.resize(static_cast<size_t>(nLh));
    p.lang_tokens.assign(static_cast<size_t>(nLh), 0);
    p.words = (nLh + 63) / 64;

    uint32_t max_tok = 0;
    int64_t total = 0;
    for (const auto& c : v.chunks) {
        p.chunk_offset.push_back(total);
        total += c.n;
        for (int64_t i = 0; i < c.n; ++i)
            max_tok = std::max(max_tok, c.token[i]);
    }
    if (max_tok >= kMaxTokenId)
        fail(kComponent, "trace '{}': expected token ids below {}, found {}", h.label, kMaxTokenId,
             max_tok);
    std::vector<int32_t> dense(static_cast<size_t>(max_tok) + 1, -1);
    p.tok_compact.resize(static_cast<size_t>(total));

    std::unordered_map<uint64_t, int64_t> unit_of;
    std::unordered_map<uint32_t, int64_t> doc_of;
    for (size_t ci = 0; ci < v.chunks.size(); ++ci) {
        const auto& c = v.chunks[ci];
        int64_t cur = -1;  // unit of the current run (a new chunk always starts a new run)
        uint32_t cur_doc = 0;
        int32_t cur_pass = 0;
        for (int64_t i = 0; i < c.n; ++i) {
            const int lang = c.lang[i];
            if (lang >= nLh)
                fail(kComponent,
                     "trace '{}': chunk {} token {}: expected a language index below {} (the "
                     "header's table), found {}",
                     h.label, ci, i, nLh, lang);
            if (cur < 0 || c.doc[i] != cur_doc || c.passage[i] != cur_pass) {
                cur_doc = c.doc[i];
                cur_pass = c.passage[i];
                const uint64_t key = (uint64_t{cur_doc} << 32) | static_cast<uint32_t>(cur_pass);
                auto [it, fresh] = unit_of.try_emplace(key, static_cast<int64_t>(p.units.size()));
                if (fresh) {
                    auto [dit, new_doc] =
                        doc_of.try_emplace(cur_doc, static_cast<int64_t>(p.doc_ids.size()));
                    if (new_doc) {
                        p.doc_ids.push_back(cur_doc);
                        p.doc_lang.push_back(lang);
                    }
                    Unit u;
                    u.doc = dit->second;
                    u.passage = cur_pass;
                    u.lang = p.doc_lang[static_cast<size_t>(dit->second)];
                    p.units.push_back(u);
                }
                cur = it->second;
                p.runs[static_cast<size_t>(p.units[cur].lang)].push_back(
                    Run{static_cast<int32_t>(ci), i, i, cur});
            }
            Unit& u = p.units[static_cast<size_t>(cur)];
            if (lang != u.lang)
                fail(kComponent,
                     "trace '{}': document {} has tokens of two languages ({} and {}; chunk {} "
                     "token {}): expected one language per document",
                     h.label, cur_doc, h.languages[static_cast<size_t>(u.lang)].code,
                     h.languages[static_cast<size_t>(lang)].code, ci, i);
            ++u.tokens;
            p.runs[static_cast<size_t>(lang)].back().end = i + 1;
            ++p.lang_tokens[static_cast<size_t>(lang)];

            int32_t& tc = dense[c.token[i]];
            if (tc < 0) {
                tc = static_cast<int32_t>(p.vocab.size());
                p.vocab.push_back(c.token[i]);
                p.occurrences.push_back(0);
                p.presence.resize(p.presence.size() + static_cast<size_t>(p.words), 0);
            }
            ++p.occurrences[static_cast<size_t>(tc)];
            p.presence[static_cast<size_t>(tc) * p.words + lang / 64] |= uint64_t{1} << (lang % 64);
            p.tok_compact[static_cast<size_t>(p.chunk_offset[ci] + i)] = tc;
        }
    }
    return p;
}

// What went wrong in a tile (the first offence in trace order); checked after the parallel loop
// because nothing may throw inside it.
struct TileError {
    enum Kind { kNone, kExpertRange, kDuplicate, kWeight } kind = kNone;
    int32_t chunk = 0;
    int64_t index = 0;
    int rank = 0;
    double value = 0;
};

// Shared, read-only inputs of the tiles, and the output arrays they write disjoint parts of.
struct TileContext {
    const trace::TraceView* view;
    const PreScan* pre;
    std::vector<std::vector<Run>> runs;  // [language]
    int E, K, R, nL;
    double* unit_sums = nullptr;                      // [U][R][E], estimator `est`
    std::array<double*, kNumEstimators> lang_sums{};  // [nL][R][E]
    Estimator est = Estimator::kCounts;
    uint32_t* coact = nullptr;  // [nL][R][E][E]
    // Restricted: ru_of[a][signature] -> row block index, -1 if a never has that signature.
    std::vector<std::vector<int32_t>> ru_of;
    const std::vector<int32_t>* sig_of = nullptr;  // compact token -> signature
    double* ru = nullptr;                          // [nRU][R][E]
    Estimator ru_est = Estimator::kCounts;
};

void run_tile(const TileContext& t, int r, int a, TileError* err) {
    const int E = t.E, K = t.K, R = t.R;
    // Block sums of the three estimators; flushed into the unit's and the language's rows.
    std::vector<double> blk(static_cast<size_t>(3 * E));
    double* const bc = blk.data();
    double* const bw = blk.data() + E;
    double* const br = blk.data() + 2 * E;
    const double* const bp = blk.data() + static_cast<int>(t.est) * E;
    const int64_t lang_off = (static_cast<int64_t>(a) * R + r) * E;
    std::vector<uint64_t> stamp(static_cast<size_t>(E), 0);
    uint64_t tick = 0;
    uint32_t* co = t.coact ? t.coact + (static_cast<int64_t>(a) * R + r) * E * E : nullptr;
    const std::vector<int32_t>* ru_of = t.ru ? &t.ru_of[static_cast<size_t>(a)] : nullptr;
    for (const Run& run : t.runs[static_cast<size_t>(a)]) {
        const trace::TraceChunk& c = t.view->chunks[static_cast<size_t>(run.chunk)];
        double* urow = t.unit_sums + (run.unit * R + r) * E;
        const int32_t* tc = t.pre->tok_compact.data() + t.pre->chunk_offset[run.chunk];
        for (int64_t b0 = run.begin; b0 < run.end; b0 += kBlock) {
            const int64_t b1 = std::min(run.end, b0 + kBlock);
            std::fill(blk.begin(), blk.end(), 0.0);
            for (int64_t i = b0; i < b1; ++i) {
                const uint16_t* ex = c.experts_at(r, i, K);
                const float* w = c.weights_at(r, i, K);
                double ws = 0;
                ++tick;
                for (int k = 0; k < K; ++k) {
                    const double wk = w[k];
                    if (!(wk >= 0) || !std::isfinite(wk) || ex[k] >= E || stamp[ex[k]] == tick)
                        [[unlikely]] {
                        if (err->kind == TileError::kNone) {
                            err->kind = ex[k] >= E                         ? TileError::kExpertRange
                                        : !(wk >= 0) || !std::isfinite(wk) ? TileError::kWeight
                                                                           : TileError::kDuplicate;
                            err->chunk = run.chunk;
                            err->index = i;
                            err->rank = k;
                            err->value = err->kind == TileError::kWeight ? wk : ex[k];
                        }
                        return;
                    }
                    stamp[ex[k]] = tick;
                    ws += wk;
                }
                const double inv = ws > 0 ? 1.0 / ws : 0.0;
                const double flat = ws > 0 ? 0.0 : 1.0 / K;
                double* rrow = nullptr;
                if (ru_of) {
                    const int32_t sig = (*t.sig_of)[static_cast<size_t>(tc[i])];
                    rrow = t.ru +
                           (static_cast<int64_t>((*ru_of)[static_cast<size_t>(sig)]) * R + r) * E;
                }
                for (int k = 0; k < K; ++k) {
                    const int e = ex[k];
                    const double wk = w[k];
                    const double rk = ws > 0 ? wk * inv : flat;
                    bc[e] += 1.0;
                    bw[e] += wk;
                    br[e] += rk;
                    if (rrow)
                        rrow[e] += t.ru_est == Estimator::kCounts   ? 1.0
                                   : t.ru_est == Estimator::kWeight ? wk
                                                                    : rk;
                }
                if (co) {
                    // Pairs in rank order (either orientation); fold_coactivation() adds the
                    // lower triangle onto the upper one afterwards. No min/max: a data-dependent
                    // branch here cost 3x the whole pass.
                    for (int k1 = 0; k1 < K; ++k1) {
                        uint32_t* row = co + static_cast<int64_t>(ex[k1]) * E;
                        for (int k2 = k1 + 1; k2 < K; ++k2)
                            ++row[ex[k2]];
                    }
                }
            }
            for (int e = 0; e < E; ++e)
                urow[e] += bp[e];
            for (int k = 0; k < kNumEstimators; ++k)
                for (int e = 0; e < E; ++e)
                    t.lang_sums[static_cast<size_t>(k)][lang_off + e] +=
                        blk[static_cast<size_t>(k * E + e)];
        }
    }
}

[[noreturn]] void throw_tile_error(const trace::TraceView& v, const TileError& e, int r) {
    const auto& h = v.header;
    const auto& c = v.chunks[static_cast<size_t>(e.chunk)];
    const std::string where = fmt::format(
        "chunk {} token {} (document {}, position {}), layer {}, rank {}", e.chunk, e.index,
        c.doc[e.index], c.position[e.index], h.layers[static_cast<size_t>(r)], e.rank);
    switch (e.kind) {
        case TileError::kExpertRange:
            fail(kComponent, "trace '{}': {}: expected an expert id below {} (E), found {}",
                 h.label, where, h.num_experts, e.value);
        case TileError::kDuplicate:
            fail(kComponent, "trace '{}': {}: expected distinct top-k experts, found {} twice",
                 h.label, where, e.value);
        default:
            fail(kComponent,
                 "trace '{}': {}: expected a finite non-negative routing weight, found {}", h.label,
                 where, e.value);
    }
}

// Distinct language sets ("signatures") of the token ids, over present languages.
struct Signatures {
    std::vector<int32_t> sig_of;          // compact token -> signature
    std::vector<std::vector<int>> langs;  // signature -> languages
    std::vector<int64_t> tokens;          // signature -> distinct token ids
};

Signatures signatures(const PreScan& p, const std::vector<int>& active_of) {
    Signatures s;
    std::unordered_map<std::string, int32_t> id;
    const size_t V = p.vocab.size();
    s.sig_of.resize(V);
    std::string key;
    for (size_t t = 0; t < V; ++t) {
        key.assign(reinterpret_cast<const char*>(&p.presence[t * p.words]),
                   sizeof(uint64_t) * static_cast<size_t>(p.words));
        auto [it, fresh] = id.try_emplace(key, static_cast<int32_t>(s.langs.size()));
        if (fresh) {
            std::vector<int> langs;
            for (int hl = 0; hl < static_cast<int>(active_of.size()); ++hl)
                if ((p.presence[t * p.words + hl / 64] >> (hl % 64)) & 1)
                    langs.push_back(active_of[static_cast<size_t>(hl)]);
            std::sort(langs.begin(), langs.end());
            s.langs.push_back(std::move(langs));
            s.tokens.push_back(0);
        }
        s.sig_of[t] = it->second;
        ++s.tokens[static_cast<size_t>(it->second)];
    }
    return s;
}

// Top token ids per (layer, expert): per layer, a dense [V][E] count table (one per thread; the
// K increments of a token land in one 4E-byte row), then a partial sort per expert. Walking the
// tokens grouped by id instead (one row in L1) was measured 2x slower: its random reads of the
// chunked per-layer expert arrays miss the TLB.
void collect_top_tokens(TraceStats* st, const trace::TraceView& v, const PreScan& p, int top) {
    const int E = st->E, K = st->K, R = st->R;
    const size_t V = p.vocab.size();
    st->top_tokens.assign(static_cast<size_t>(R) * E, {});
    const int nt = std::max(1, std::min(num_threads(), R));
    std::vector<std::vector<uint32_t>> scratch(static_cast<size_t>(nt),
                                               std::vector<uint32_t>(V * E));
    parallel_for(R, 1, [&](int64_t r0, int64_t r1, int tid) {
        std::vector<uint32_t>& cnt = scratch[static_cast<size_t>(tid)];
        std::vector<int32_t> order(V);
        for (int64_t r = r0; r < r1; ++r) {
            std::fill(cnt.begin(), cnt.end(), 0u);
            for (size_t ci = 0; ci < v.chunks.size(); ++ci) {
                const auto& c = v.chunks[ci];
                const int32_t* tc = p.tok_compact.data() + p.chunk_offset[ci];
                for (int64_t i = 0; i < c.n; ++i) {
                    const uint16_t* ex = c.experts_at(static_cast<int>(r), i, K);
                    uint32_t* row = cnt.data() + static_cast<size_t>(tc[i]) * E;
                    for (int k = 0; k < K; ++k)
                        ++row[ex[k]];
                }
            }
            for (int e = 0; e < E; ++e) {
                for (size_t t = 0; t < V; ++t)
                    order[t] = static_cast<int32_t>(t);
                const size_t m = std::min<size_t>(static_cast<size_t>(top), V);
                auto better = [&](int32_t x, int32_t y) {
                    const uint32_t cx = cnt[static_cast<size_t>(x) * E + e];
                    const uint32_t cy = cnt[static_cast<size_t>(y) * E + e];
                    if (cx != cy) return cx > cy;
                    return p.vocab[static_cast<size_t>(x)] < p.vocab[static_cast<size_t>(y)];
                };
                std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(m),
                                  order.end(), better);
                auto& out = st->top_tokens[static_cast<size_t>(r * E + e)];
                for (size_t j = 0; j < m; ++j) {
                    const size_t t = static_cast<size_t>(order[j]);
                    const uint32_t n = cnt[t * E + e];
                    if (n == 0) break;
                    out.push_back(TopToken{p.vocab[t], n, p.occurrences[t]});
                }
            }
        }
    });
}

}  // namespace

const char* estimator_name(Estimator e) {
    switch (e) {
        case Estimator::kCounts:
            return "counts";
        case Estimator::kWeight:
            return "weight";
        case Estimator::kRenorm:
            return "renorm";
    }
    return "?";
}

Estimator parse_estimator(std::string_view name) {
    for (Estimator e : kAllEstimators)
        if (name == estimator_name(e)) return e;
    fail(kComponent, "estimator: expected counts, weight or renorm, found '{}'", name);
}

TraceStats collect_trace_stats(const trace::TraceView& view, const CollectOptions& o) {
    validate_view(view);
    const auto& h = view.header;
    PreScan pre = prescan(view);

    TraceStats st;
    st.E = h.num_experts;
    st.K = h.top_k;
    st.R = h.num_layers();
    st.layers = h.layers;
    st.label = h.label;
    st.model = h.model;
    st.data = h.data;
    const int nLh = static_cast<int>(h.languages.size());
    std::vector<int> active_of(static_cast<size_t>(nLh), -1);
    for (int hl = 0; hl < nLh; ++hl) {
        if (pre.lang_tokens[static_cast<size_t>(hl)] == 0) {
            st.absent_languages.push_back(h.languages[static_cast<size_t>(hl)].code);
            continue;
        }
        if (pre.lang_tokens[static_cast<size_t>(hl)] > kMaxLangTokens)
            fail(kComponent, "trace '{}': language {} has {} tokens; at most {} are supported",
                 h.label, h.languages[static_cast<size_t>(hl)].code,
                 pre.lang_tokens[static_cast<size_t>(hl)], kMaxLangTokens);
        active_of[static_cast<size_t>(hl)] = st.nL++;
        st.languages.push_back(h.languages[static_cast<size_t>(hl)]);
        st.lang_tokens.push_back(pre.lang_tokens[static_cast<size_t>(hl)]);
    }
    const int E = st.E, K = st.K, R = st.R, nL = st.nL;
    st.units = std::move(pre.units);
    st.doc_ids = std::move(pre.doc_ids);
    st.doc_lang.resize(pre.doc_lang.size());
    for (size_t d = 0; d < pre.doc_lang.size(); ++d)
        st.doc_lang[d] = active_of[static_cast<size_t>(pre.doc_lang[d])];
    st.lang_docs.assign(static_cast<size_t>(nL), {});
    st.lang_units.assign(static_cast<size_t>(nL), {});
    for (int64_t d = 0; d < st.num_docs(); ++d)
        st.lang_docs[static_cast<size_t>(st.doc_lang[static_cast<size_t>(d)])].push_back(d);
    for (int64_t u = 0; u < st.num_units(); ++u) {
        Unit& un = st.units[static_cast<size_t>(u)];
        un.lang = active_of[static_cast<size_t>(un.lang)];
        st.lang_units[static_cast<size_t>(un.lang)].push_back(u);
        st.tokens += un.tokens;
    }

    TileContext t;
    t.view = &view;
    t.pre = &pre;
    t.E = E;
    t.K = K;
    t.R = R;
    t.nL = nL;
    t.runs.resize(static_cast<size_t>(nL));
    for (int hl = 0; hl < nLh; ++hl)
        if (active_of[static_cast<size_t>(hl)] >= 0)
            t.runs[static_cast<size_t>(active_of[static_cast<size_t>(hl)])] =
                std::move(pre.runs[static_cast<size_t>(hl)]);
    st.estimator = o.estimator;
    st.unit_sums.assign(static_cast<size_t>(st.num_units()) * R * E, 0.0);
    t.unit_sums = st.unit_sums.data();
    t.est = o.estimator;
    for (int k = 0; k < kNumEstimators; ++k) {
        st.lang_sums[static_cast<size_t>(k)].assign(static_cast<size_t>(nL) * R * E, 0.0);
        t.lang_sums[static_cast<size_t>(k)] = st.lang_sums[static_cast<size_t>(k)].data();
    }

    // Vocabulary sets and signatures (needed for the overlap matrix and the restricted sums).
    Signatures sig = signatures(pre, active_of);
    st.vocab_size = static_cast<int64_t>(pre.vocab.size());
    st.shared_vocab.assign(static_cast<size_t>(nL) * nL, 0);
    for (size_t s = 0; s < sig.langs.size(); ++s)
        for (int a : sig.langs[s])
            for (int b : sig.langs[s])
                st.shared_vocab[static_cast<size_t>(a) * nL + b] += sig.tokens[s];

    std::vector<double> ru;
    if (o.restricted) {
        t.ru_of.assign(static_cast<size_t>(nL), std::vector<int32_t>(sig.langs.size(), -1));
        int64_t n_ru = 0;
        for (size_t s = 0; s < sig.langs.size(); ++s)
            for (int a : sig.langs[s])
                t.ru_of[static_cast<size_t>(a)][s] = static_cast<int32_t>(n_ru++);
        const double bytes = static_cast<double>(n_ru) * R * E * sizeof(double);
        if (bytes > static_cast<double>(o.restricted_max_bytes)) {
            st.restricted_note = fmt::format(
                "skipped: {} (language, token-set) rows would take {:.0f} MiB (limit {:.0f} MiB)",
                n_ru, bytes / 1048576.0, static_cast<double>(o.restricted_max_bytes) / 1048576.0);
            t.ru_of.clear();
        } else {
            ru.assign(static_cast<size_t>(n_ru) * R * E, 0.0);
            t.ru = ru.data();
            t.sig_of = &sig.sig_of;
            t.ru_est = o.estimator;
        }
    } else {
        st.restricted_note = "disabled";
    }
    if (o.coactivation) {
        st.coact.assign(static_cast<size_t>(nL) * R * E * E, 0u);
        t.coact = st.coact.data();
        st.has_coactivation = true;
    }

    // Tiles in layer-major order, so a thread's contiguous share covers whole layers when R is a
    // multiple of the thread count.
    const int64_t n_tiles = static_cast<int64_t>(R) * nL;
    std::vector<TileError> errors(static_cast<size_t>(n_tiles));
    parallel_for(n_tiles, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i)
            run_tile(t, static_cast<int>(i / nL), static_cast<int>(i % nL),
                     &errors[static_cast<size_t>(i)]);
    });
    // Report the earliest offence in trace order.
    const TileError* first = nullptr;
    int first_r = 0;
    for (int64_t i = 0; i < n_tiles; ++i) {
        const TileError& e = errors[static_cast<size_t>(i)];
        if (e.kind == TileError::kNone) continue;
        if (!first || std::tie(e.chunk, e.index) < std::tie(first->chunk, first->index)) {
            first = &e;
            first_r = static_cast<int>(i / nL);
        }
    }
    if (first) throw_tile_error(view, *first, first_r);
    if (t.coact) {
        // Unordered pair counts in the upper triangle: C[i][j] += C[j][i] for i < j.
        const size_t EE = static_cast<size_t>(E) * E;
        for (size_t blk = 0; blk < static_cast<size_t>(nL) * R; ++blk) {
            uint32_t* c = st.coact.data() + blk * EE;
            for (int i = 0; i < E; ++i)
                for (int j = i + 1; j < E; ++j) {
                    c[i * E + j] += c[j * E + i];
                    c[j * E + i] = 0;
                }
        }
    }

    if (t.ru) {
        // restricted[a][b] = sum of a's rows over the signatures that contain b.
        st.restricted.assign(static_cast<size_t>(nL) * nL * R * E, 0.0);
        const size_t RE = static_cast<size_t>(R) * E;
        for (size_t s = 0; s < sig.langs.size(); ++s)
            for (int a : sig.langs[s]) {
                const double* src = ru.data() + t.ru_of[static_cast<size_t>(a)][s] * RE;
                for (int b : sig.langs[s]) {
                    double* dst = st.restricted.data() + (static_cast<size_t>(a) * nL + b) * RE;
                    for (size_t j = 0; j < RE; ++j)
                        dst[j] += src[j];
                }
            }
        st.has_restricted = true;
        st.restricted_estimator = o.estimator;
    }
    if (o.top_tokens > 0) collect_top_tokens(&st, view, pre, o.top_tokens);
    return st;
}

}  // namespace polymoe::analysis
