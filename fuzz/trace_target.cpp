// Fuzz target: a routing trace (trace::TraceFile::open on a memory mapping), then every token's
// columns and every layer's experts, weights and logits read the way the analyses do: expert ids
// index a per-expert count table (with .at(), so an id >= E that the reader let through is an
// escaping std::out_of_range, which the harness reports as a bug).
#include <vector>

#include "fuzz_targets.h"
#include "fuzz_util.h"
#include "trace/trace_file.h"

namespace polymoe::fuzz {

int fuzz_trace(const uint8_t* data, size_t size) {
    return guarded([&] {
        std::string path = write_scratch("input.pmtrace", data, size);
        trace::TraceFile f = trace::TraceFile::open(path);
        const trace::TraceHeader& h = f.header();
        const int R = h.num_layers(), K = h.top_k, E = h.num_experts;
        double sum = 0;
        std::vector<int64_t> counts(static_cast<size_t>(E), 0);
        for (const trace::TraceChunk& c : f.view().chunks) {
            for (int64_t i = 0; i < c.n; ++i) {
                sum += c.lang[i] + c.doc[i] + c.passage[i] + c.position[i] + c.token[i];
                for (int r = 0; r < R; ++r) {
                    const uint16_t* ex = c.experts_at(r, i, K);
                    const float* w = c.weights_at(r, i, K);
                    for (int k = 0; k < K; ++k) {
                        sum += ex[k] + w[k];
                        ++counts.at(ex[k]);
                    }
                    if (c.logits != nullptr)
                        for (int e = 0; e < E; ++e)
                            sum += c.logits[(r * c.n + i) * E + e];
                }
            }
        }
        (void)trace::header_json(h);
        (void)sum;
    });
}

}  // namespace polymoe::fuzz
