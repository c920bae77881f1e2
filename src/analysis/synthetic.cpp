// Synthetic trace generator (see synthetic.h). Random numbers come from counter-based splitmix64
// streams (core/rng.h), so a spec gives the same trace on every platform. A token's K distinct
// experts are drawn sequentially from its document's distribution by inverse CDF with rejection
// of repeats; the uniform mix keeps every supported expert's probability away from 0, so the
// rejection loop ends quickly.
#include "analysis/synthetic.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/check.h"
#include "core/rng.h"

namespace polymoe::analysis {

namespace {

// A sequential stream over splitmix64 counters.
struct Stream {
    uint64_t key, i = 0;
    explicit Stream(uint64_t k) : key(k) {}
    double uniform() { return rng_uniform(key, i++); }
    double normal() { return rng_normal(key, i++); }
    uint64_t below(uint64_t n) {
        return static_cast<uint64_t>((static_cast<unsigned __int128>(splitmix64(key + i++)) * n) >>
                                     64);
    }
};

}  // namespace

trace::TraceView OwnedTrace::view() const {
    trace::TraceView v;
    v.header = header;
    for (const OwnedChunk& c : chunks) {
        trace::TraceChunk t;
        t.n = static_cast<int64_t>(c.lang.size());
        t.lang = c.lang.data();
        t.doc = c.doc.data();
        t.passage = c.passage.data();
        t.position = c.position.data();
        t.token = c.token.data();
        t.expert = c.expert.data();
        t.weight = c.weight.data();
        v.chunks.push_back(t);
    }
    return v;
}

TraceBuilder::TraceBuilder(trace::TraceHeader header, int64_t chunk_tokens)
    : chunk_tokens_(std::max<int64_t>(1, chunk_tokens)) {
    out_.header = std::move(header);
}

void TraceBuilder::add(int lang,
                       uint32_t doc,
                       int32_t passage,
                       uint32_t position,
                       uint32_t token,
                       const uint16_t* experts,
                       const float* weights) {
    const int R = out_.header.num_layers(), K = out_.header.top_k;
    open_.lang.push_back(static_cast<uint16_t>(lang));
    open_.doc.push_back(doc);
    open_.passage.push_back(passage);
    open_.position.push_back(position);
    open_.token.push_back(token);
    ex_.insert(ex_.end(), experts, experts + R * K);
    w_.insert(w_.end(), weights, weights + R * K);
    if (static_cast<int64_t>(open_.lang.size()) >= chunk_tokens_) flush();
}

void TraceBuilder::flush() {
    const int64_t n = static_cast<int64_t>(open_.lang.size());
    if (n == 0) return;
    const int R = out_.header.num_layers(), K = out_.header.top_k;
    open_.expert.resize(static_cast<size_t>(R * n * K));
    open_.weight.resize(static_cast<size_t>(R * n * K));
    for (int64_t i = 0; i < n; ++i)
        for (int r = 0; r < R; ++r)
            for (int k = 0; k < K; ++k) {
                open_.expert[static_cast<size_t>((r * n + i) * K + k)] =
                    ex_[static_cast<size_t>((i * R + r) * K + k)];
                open_.weight[static_cast<size_t>((r * n + i) * K + k)] =
                    w_[static_cast<size_t>((i * R + r) * K + k)];
            }
    out_.chunks.push_back(std::move(open_));
    open_ = OwnedChunk{};
    ex_.clear();
    w_.clear();
}

OwnedTrace TraceBuilder::finish() {
    flush();
    int64_t docs = 0;
    for (const auto& c : out_.chunks)
        for (uint32_t d : c.doc)
            docs = std::max<int64_t>(docs, int64_t{d} + 1);
    out_.header.num_documents = docs;
    return std::move(out_);
}

std::vector<std::vector<double>> synthetic_lang_probs(const SyntheticSpec& s) {
    const int nL = s.languages.empty() ? s.nL : static_cast<int>(s.languages.size());
    if (!s.lang_probs.empty()) {
        POLYMOE_CHECK(static_cast<int>(s.lang_probs.size()) == nL, "lang_probs: {} rows", nL);
        return s.lang_probs;
    }
    const int E = s.E, R = s.R;
    std::vector<std::vector<double>> p(static_cast<size_t>(nL),
                                       std::vector<double>(static_cast<size_t>(R) * E));
    Stream base(rng_key(s.seed, "synthetic.base"));
    std::vector<double> b(static_cast<size_t>(R) * E);
    for (double& v : b)
        v = 1.5 * base.normal();
    for (int a = 0; a < nL; ++a) {
        Stream z(rng_key(s.seed, "synthetic.lang." + std::to_string(a)));
        for (int r = 0; r < R; ++r) {
            double sum = 0;
            for (int e = 0; e < E; ++e) {
                const size_t i = static_cast<size_t>(r) * E + e;
                p[static_cast<size_t>(a)][i] = std::exp(b[i] + s.separation * z.normal());
                sum += p[static_cast<size_t>(a)][i];
            }
            for (int e = 0; e < E; ++e)
                p[static_cast<size_t>(a)][static_cast<size_t>(r) * E + e] /= sum;
        }
    }
    return p;
}

OwnedTrace make_synthetic_trace(const SyntheticSpec& s) {
    const int E = s.E, K = s.K, R = s.R;
    trace::TraceHeader h;
    h.num_experts = E;
    h.top_k = K;
    h.layers = s.layers;
    if (h.layers.empty())
        for (int r = 0; r < R; ++r)
            h.layers.push_back(r);
    POLYMOE_CHECK(static_cast<int>(h.layers.size()) == R, "layers: {} for R = {}", h.layers.size(),
                  R);
    h.languages = s.languages;
    if (h.languages.empty())
        for (int a = 0; a < s.nL; ++a)
            h.languages.push_back({"l" + std::to_string(a), "", "Latn", "", "1", ""});
    const int nL = static_cast<int>(h.languages.size());
    h.model = "synthetic";
    h.label = "synthetic";
    h.data = "synthetic";
    const auto probs = synthetic_lang_probs(s);

    TraceBuilder tb(h, s.chunk_tokens);
    Stream structure(rng_key(s.seed, "synthetic.structure"));
    Stream routing(rng_key(s.routing_seed, "synthetic.routing"));
    std::vector<double> cdf(static_cast<size_t>(R) * E), pd(static_cast<size_t>(E));
    std::vector<uint16_t> ex(static_cast<size_t>(R) * K);
    std::vector<float> w(static_cast<size_t>(R) * K);
    std::vector<float> pdoc(static_cast<size_t>(R) * E);
    uint32_t doc = 0;
    for (int a = 0; a < nL; ++a) {
        const auto& pa = probs[static_cast<size_t>(a)];
        for (int d = 0; d < s.docs_per_lang; ++d, ++doc) {
            // The document's distribution per layer: the language's, perturbed in log space,
            // mixed with the uniform distribution over the language's support.
            for (int r = 0; r < R; ++r) {
                double sum = 0;
                int support = 0;
                for (int e = 0; e < E; ++e) {
                    const double v = pa[static_cast<size_t>(r) * E + e];
                    pd[static_cast<size_t>(e)] =
                        v > 0 ? v * std::exp(s.doc_noise * routing.normal()) : 0;
                    sum += pd[static_cast<size_t>(e)];
                    support += v > 0;
                }
                POLYMOE_CHECK(support >= K, "language {} layer {}: {} experts < K", a, r, support);
                double acc = 0;
                for (int e = 0; e < E; ++e) {
                    const double v = pd[static_cast<size_t>(e)];
                    const double q =
                        v > 0 ? (1 - s.uniform_mix) * v / sum + s.uniform_mix / support : 0.0;
                    pdoc[static_cast<size_t>(r) * E + e] = static_cast<float>(q);
                    acc += q;
                    cdf[static_cast<size_t>(r) * E + e] = acc;
                }
            }
            const int len = std::max<int>(
                1, s.tokens_per_doc / 2 + static_cast<int>(structure.below(
                                              static_cast<uint64_t>(s.tokens_per_doc) + 1)));
            for (int pos = 0; pos < len; ++pos) {
                const bool shared = structure.uniform() < s.shared_token_rate;
                const uint32_t tok =
                    shared ? static_cast<uint32_t>(structure.below(s.vocab_shared))
                           : static_cast<uint32_t>(s.vocab_shared + a * s.vocab_per_lang +
                                                   structure.below(s.vocab_per_lang));
                for (int r = 0; r < R; ++r) {
                    const double* c = cdf.data() + static_cast<size_t>(r) * E;
                    for (int k = 0; k < K;) {
                        const double u = routing.uniform() * c[E - 1];
                        const int e = std::min<int>(
                            E - 1, static_cast<int>(std::upper_bound(c, c + E, u) - c));
                        bool dup = pdoc[static_cast<size_t>(r) * E + e] <= 0;
                        for (int j = 0; j < k; ++j)
                            dup = dup || ex[static_cast<size_t>(r) * K + j] == e;
                        if (dup) continue;
                        ex[static_cast<size_t>(r) * K + k] = static_cast<uint16_t>(e);
                        w[static_cast<size_t>(r) * K + k] = pdoc[static_cast<size_t>(r) * E + e];
                        ++k;
                    }
                }
                tb.add(a, doc, s.parallel ? d : -1, static_cast<uint32_t>(pos), tok, ex.data(),
                       w.data());
            }
        }
    }
    return tb.finish();
}

}  // namespace polymoe::analysis
