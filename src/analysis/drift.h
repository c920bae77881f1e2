// Cross-checkpoint drift between two traces of identical tokens (the same documents, positions
// and token ids in the same order, e.g. base vs Stage 1 on the same held-out data):
//  - router saturation: per language and layer, the mean over tokens of |S_A ∩ S_B| / K, where S
//    is a token's top-k expert set in each trace, with a bootstrap CI over documents;
//  - per-expert migration: the language's expert distribution in A and in B, the change per
//    expert (p_B - p_A) and JSD(p_A, p_B) in bits, with a paired bootstrap CI (the same document
//    draws applied to both traces).
// Traces whose tokens differ are rejected with the first differing token named.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "analysis/trace_stats.h"
#include "trace/trace.h"

namespace polymoe::analysis {

// Throws polymoe::Error unless a and b have the same E, K, recorded layers and tokens.
void check_same_tokens(const trace::TraceView& a, const trace::TraceView& b);

nlohmann::json drift_report(const trace::TraceView& va,
                            const TraceStats& a,
                            const trace::TraceView& vb,
                            const TraceStats& b,
                            int n_boot,
                            double level,
                            uint64_t seed);

}  // namespace polymoe::analysis
