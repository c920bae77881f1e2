// Routing capture over prepared shards (see capture.h).
#include "trace/capture.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/progress.h"
#include "core/timer.h"
#include "data/prepare.h"
#include "data/shard.h"
#include "model/observer.h"
#include "model/olmoe.h"

namespace polymoe::trace {

namespace {

struct Window {
    int64_t doc;       // index within the language's shard set
    int64_t begin, n;  // token range within the document
};

}  // namespace

void RoutingRecorder::on_router(int layer,
                                int64_t,
                                int64_t,
                                int64_t,
                                const float* logits,
                                const float*,
                                const int32_t* topk_idx,
                                const float* topk_weight,
                                const float*) {
    const int r = slot_[static_cast<size_t>(layer)];
    if (r < 0) return;
    auto& ex = out->expert[static_cast<size_t>(r)];
    auto& wt = out->weight[static_cast<size_t>(r)];
    for (int64_t t : keep)
        for (int k = 0; k < K_; ++k) {
            ex.push_back(static_cast<uint16_t>(topk_idx[t * K_ + k]));
            wt.push_back(topk_weight[t * K_ + k]);
        }
    if (logits_) {
        auto& lg = out->logit[static_cast<size_t>(r)];
        for (int64_t t : keep)
            lg.insert(lg.end(), logits + t * E_, logits + (t + 1) * E_);
    }
}

int RoutingRecorder::last_router_needed() const {
    int last = -1;
    for (size_t l = 0; l < slot_.size(); ++l)
        if (slot_[l] >= 0) last = static_cast<int>(l);
    return last;
}

CaptureResult capture_trace(const model::OlmoeWeights& w,
                            const std::string& model_dir,
                            const std::string& prepared_dir,
                            const CaptureOptions& o,
                            const std::string& out_path) {
    Timer timer;
    const auto& c = w.config;
    nlohmann::json stats = data::read_prepared_stats(prepared_dir);
    const std::vector<std::string> codes =
        data::select_languages(stats, o.languages, prepared_dir, "trace");
    std::vector<data::ShardSet> sets;
    TraceHeader h;
    h.num_experts = static_cast<int>(c.num_experts);
    h.top_k = static_cast<int>(c.num_experts_per_tok);
    std::vector<int> slot(static_cast<size_t>(c.num_hidden_layers), -1);
    if (o.layers.empty())
        for (int l = 0; l < c.num_hidden_layers; ++l)
            h.layers.push_back(l);
    else
        h.layers = o.layers;
    for (size_t r = 0; r < h.layers.size(); ++r) {
        int l = h.layers[r];
        if (l < 0 || l >= c.num_hidden_layers || slot[static_cast<size_t>(l)] >= 0)
            fail("trace", "--layers: expected distinct layers in [0, {}), found {}",
                 c.num_hidden_layers, l);
        slot[static_cast<size_t>(l)] = static_cast<int>(r);
    }
    h.has_logits = o.logits;
    h.model = model_dir;
    h.label = o.label.empty()
                  ? std::filesystem::path(model_dir).lexically_normal().filename().string()
                  : o.label;
    h.data = prepared_dir + " (" + o.split + ")";
    int64_t total = 0;
    for (const auto& code : codes) {
        sets.push_back(data::ShardSet::open(prepared_dir, code, o.split));
        if (sets.back().meta().vocab_size > c.vocab_size)
            fail("trace",
                 "{}: expected token ids below the model's vocab_size {}, found a "
                 "tokenizer with {} ids",
                 sets.back().shards().front().path(), c.vocab_size, sets.back().meta().vocab_size);
        h.languages.push_back(sets.back().meta().language);
        total += o.max_tokens > 0 ? std::min(o.max_tokens, sets.back().num_tokens())
                                  : sets.back().num_tokens();
    }
    if (h.num_experts > 65535)
        fail("trace", "expected at most 65535 experts (u16 ids), found {}", h.num_experts);

    TraceWriter writer(out_path, h);
    ChunkBuffer chunk;
    chunk.reset(h.num_layers(), h.top_k, h.num_experts, o.logits);
    RoutingRecorder rec(slot, h.top_k, h.num_experts, o.logits);
    rec.out = &chunk;
    model::Activations a;
    Progress progress("trace", static_cast<double>(total), "tokens", 1.0);
    CaptureResult res;
    uint32_t doc_base = 0;
    for (size_t li = 0; li < sets.size(); ++li) {
        const data::ShardSet& s = sets[li];
        progress.set_label("trace " + codes[li]);
        std::vector<Window> windows;
        int64_t budget = o.max_tokens > 0 ? o.max_tokens : INT64_MAX;
        for (int64_t d = 0; d < s.num_documents() && budget > 0; ++d) {
            const int64_t len =
                std::min<int64_t>(static_cast<int64_t>(s.document(d).size()), budget);
            for (int64_t b = 0; b < len; b += o.seq)
                windows.push_back({d, b, std::min(o.seq, len - b)});
            budget -= len;
            res.documents += len > 0;
        }
        for (size_t w0 = 0; w0 < windows.size(); w0 += static_cast<size_t>(o.batch)) {
            const size_t w1 = std::min(windows.size(), w0 + static_cast<size_t>(o.batch));
            const int64_t B = static_cast<int64_t>(w1 - w0);
            int64_t S = 0;
            for (size_t i = w0; i < w1; ++i)
                S = std::max(S, windows[i].n);
            // Round the padded length up to a multiple of 64: the
            // GEMM primitives are compiled per row count, so a few fixed shapes instead of one
            // per batch avoid recompiling them (padding is masked and never recorded).
            S = std::min<int64_t>(o.seq, (S + 63) / 64 * 64);
            std::vector<int32_t> ids(static_cast<size_t>(B * S), 0), mask(ids.size(), 0);
            rec.keep.clear();
            for (size_t i = w0; i < w1; ++i) {
                const Window& wi = windows[i];
                auto doc = s.document(wi.doc);
                const int64_t row = static_cast<int64_t>(i - w0);
                for (int64_t t = 0; t < wi.n; ++t) {
                    ids[static_cast<size_t>(row * S + t)] = static_cast<int32_t>(doc[wi.begin + t]);
                    mask[static_cast<size_t>(row * S + t)] = 1;
                    rec.keep.push_back(row * S + t);
                    chunk.lang.push_back(static_cast<uint16_t>(li));
                    chunk.doc.push_back(doc_base + static_cast<uint32_t>(wi.doc));
                    chunk.passage.push_back(static_cast<int32_t>(s.passage(wi.doc)));
                    chunk.position.push_back(static_cast<uint32_t>(wi.begin + t));
                    chunk.token.push_back(doc[wi.begin + t]);
                }
            }
            if (a.B != B || a.S != S) model::allocate_activations(a, c, B, S, /*logits=*/false);
            model::olmoe_forward(a, w, ids.data(), mask.data(), B, S, &rec);
            res.tokens += static_cast<int64_t>(rec.keep.size());
            if (chunk.size() >= o.chunk_tokens) {
                writer.write_chunk(chunk);
                chunk.clear();
            }
            progress.update(static_cast<double>(res.tokens));
        }
        doc_base += static_cast<uint32_t>(s.num_documents());
    }
    writer.write_chunk(chunk);
    writer.finish();
    progress.finish();
    res.seconds = timer.seconds();
    return res;
}

}  // namespace polymoe::trace
