// analyze(): options check, one statistics pass and one report section per trace, drift between
// consecutive traces, and the definitions table that names every number in the output.
#include "analysis/analysis.h"

#include <cmath>

#include "analysis/drift.h"
#include "core/error.h"

namespace polymoe::analysis {

namespace {

using nlohmann::json;
constexpr std::string_view kComponent = "analysis";

}  // namespace

json options_json(const AnalysisOptions& o) {
    json vo = nullptr;
    if (!o.vocab_overlap.languages.empty())
        vo = {{"languages", o.vocab_overlap.languages}, {"values", o.vocab_overlap.values}};
    return {{"estimator", estimator_name(o.estimator)},
            {"bootstrap", o.bootstrap},
            {"permutations", o.permutations},
            {"split_half_repeats", o.split_half_repeats},
            {"seed", o.seed},
            {"ci_level", o.ci_level},
            {"specific_threshold", o.specific_threshold},
            {"specific_ratio", o.specific_ratio},
            {"shared_factor", o.shared_factor},
            {"reuse_top_m", o.reuse_top_m},
            {"top_tokens", o.top_tokens},
            {"paired", o.paired},
            {"restricted", o.restricted},
            {"coactivation", o.coactivation},
            {"coactivation_top", o.coactivation_top},
            {"coactivation_matrices", o.coactivation_matrices},
            {"vocab_overlap", vo},
            {"drift", o.drift}};
}

void validate_options(const AnalysisOptions& o) {
    if (o.bootstrap < 0)
        fail(kComponent, "bootstrap: expected >= 0 replicates, found {}", o.bootstrap);
    if (o.permutations < 0)
        fail(kComponent, "permutations: expected >= 0, found {}", o.permutations);
    if (o.split_half_repeats < 0)
        fail(kComponent, "split_half_repeats: expected >= 0, found {}", o.split_half_repeats);
    if (!(o.ci_level > 0 && o.ci_level < 1))
        fail(kComponent, "ci_level: expected a level in (0, 1), found {}", o.ci_level);
    if (!(o.specific_threshold > 0 && o.specific_threshold <= 1))
        fail(kComponent, "specific_threshold: expected a share in (0, 1], found {}",
             o.specific_threshold);
    if (!(o.specific_ratio >= 1))
        fail(kComponent, "specific_ratio: expected >= 1, found {}", o.specific_ratio);
    if (!(o.shared_factor >= 0))
        fail(kComponent, "shared_factor: expected >= 0, found {}", o.shared_factor);
    if (o.reuse_top_m < 0) fail(kComponent, "reuse_top_m: expected >= 0, found {}", o.reuse_top_m);
    if (o.top_tokens < 0) fail(kComponent, "top_tokens: expected >= 0, found {}", o.top_tokens);
    if (o.coactivation_top < 0)
        fail(kComponent, "coactivation_top: expected >= 0, found {}", o.coactivation_top);
    for (double v : o.vocab_overlap.values)
        if (!std::isfinite(v))
            fail(kComponent, "vocab_overlap: expected finite values, found {}", v);
}

json definitions() {
    // clang-format off
    return {
        {"expert_distribution", "p_a[r][e]: language a's routing distribution over experts at recorded layer r. counts: top-k slots routed to e / (K * tokens); weight: routing weights (as applied) summed on e / all weights; renorm: sum over tokens of w_e / (sum of the token's top-k weights), / tokens"},
        {"routing_entropy", "H(p_a[r]) = -sum_e p_e log2 p_e, bits; 0 for one expert, log2 E for uniform routing"},
        {"jsd", "JSD(p, q) = 1/2 KL(p||m) + 1/2 KL(q||m), m = (p + q)/2; bits in [0, 1], nats = bits * ln 2; normalized = JSD / (log2 E - (H(p) + H(q))/2), in [0, 1] (0 when the bound is 0); mean_bits = mean over language pairs a < b"},
        {"bootstrap_ci", "percentile interval at ci_level over n_boot replicates; each replicate draws every language's documents with replacement (as many as it has) and recomputes the statistic from the per-document sums"},
        {"permutation_null", "language labels shuffled across all documents (each language keeps its document count), statistic recomputed; null_mean, null_p95 (95th percentile), p_value = (1 + #{null >= observed}) / (1 + n_perm); tests the global null that routing does not depend on language"},
        {"split_half_jsd", "same-language floor: JSD in bits between a random half of a language's documents (floor(n/2)) and the other half, mean over split_half_repeats seeded splits; null if the language has < 2 documents"},
        {"paired_jsd", "for passages with tokens in both languages: mean over passages of the per-passage JSD (bits), CI by resampling passages; aggregate = JSD of the same passages pooled per language"},
        {"nmi", "NMI(L; E) at layer r = I(L; E) / H(L) over the routing-slot joint P(l, e) proportional to language l's mass on e (languages weighted as in the data); 0 = same routing for all languages, 1 = disjoint experts"},
        {"nmi_balanced", "as nmi with P(l) = 1/nL, P(e | l) = p_l[e] (each language weight 1/nL); equals the generalised JSD of the languages divided by log2 nL"},
        {"nmi_trend", "least-squares slope of NMI over the model layer number (per layer) and NMI(last recorded layer) - NMI(first), each with bootstrap CI; positive = later layers more language-specific"},
        {"specific_experts", "expert e at layer r is specific to language x if x's share of the per-token mass m_a[e] / N_a summed over languages is >= threshold and >= ratio * the next language's share; stability = share of bootstrap replicates flagging the same (e, x)"},
        {"shared_experts", "expert e is shared if every language routes p_a[e] >= shared_factor / E to it (shared_factor times the uniform rate K/E per token, divided by K); stability as for specific experts"},
        {"expert_reuse", "for a language a with related b: share of p_a on the top-m experts of p_b (related), on each unrelated high-resource language's top-m (unrelated), on its own top-m (self, the ceiling); margin = related - mean unrelated; random = share on uniformly random m-sets of experts (mean m/E), p_value_related = (1 + #{random >= related}) / (1 + n)"},
        {"script_vs_language", "how much of the language signal is shared vocabulary"},
        {"vocab_overlap", "O[a][b] = share of language a's distinct token ids that also occur in language b (or the matrix given in the options)"},
        {"restricted_jsd", "JSD (bits) between a's distribution built only from a's tokens whose id occurs in b, and b's built only from b's tokens whose id occurs in a; no CI"},
        {"jsd_overlap_correlation", "Pearson correlation across language pairs a < b of JSD with the symmetrised overlap (O[a][b] + O[b][a]) / 2, per layer and for the mean JSD over layers"},
        {"coactivation", "per language and layer: frequency of each unordered expert pair = tokens whose top-k set holds both / (tokens * K(K-1)/2); sums to 1 over pairs"},
        {"coactivation_lift", "P(both in top-k) / (P(e1 in top-k) P(e2 in top-k)), P over the language's tokens; 1 = independent"},
        {"vocabulary_specialization", "per layer and expert: top token ids by slots routed to the expert, share_of_token = those slots / the token id's occurrences"},
        {"language_rate", "share of language a's tokens whose top-k set contains the expert (baseline K/E for uniform routing); language_share = rates normalised over languages"},
        {"routing_performance", "per recorded layer, correlation across (language, checkpoint) points of a per-language routing statistic with its held-out bits per byte (eval.json, checkpoints matched by label): distinctiveness = mean JSD (bits) to the other languages, entropy = routing entropy; pearson/spearman pooled over points, change_* = across languages of (last - first checkpoint) differences; within_spearman = mean over checkpoints of the Spearman correlation across languages within the checkpoint (free of the checkpoint effect); CIs by a cluster bootstrap over languages; correlational only"},
        {"availability", "per statistic: available (bool) and the reason when it is not (options that disable it, or an input without the data it needs, e.g. a count table has no documents to resample)"},
        {"drift", "for two traces of identical tokens: overlap = mean over tokens of |S_from ∩ S_to| / K (top-k sets), p_from / p_to the language's expert distributions, change = p_to - p_from, jsd_bits = JSD(p_from, p_to); CIs by a paired bootstrap over documents"},
    };
    // clang-format on
}

json analyze(const std::vector<LabeledTrace>& traces, const AnalysisOptions& o) {
    validate_options(o);
    if (traces.empty()) fail(kComponent, "expected at least one trace, found none");
    CollectOptions co;
    co.estimator = o.estimator;
    co.coactivation = o.coactivation;
    co.restricted = o.restricted;
    co.top_tokens = o.top_tokens;
    std::vector<TraceStats> stats;
    json sections = json::array();
    for (const LabeledTrace& t : traces) {
        if (!t.view) fail(kComponent, "trace '{}': expected a trace, found none", t.label);
        TraceStats st = collect_trace_stats(*t.view, co);
        if (!t.label.empty()) st.label = t.label;
        sections.push_back(trace_report(st, o));
        stats.push_back(std::move(st));
    }
    json drift = json::array();
    if (o.drift)
        for (size_t i = 0; i + 1 < traces.size(); ++i)
            drift.push_back(drift_report(*traces[i].view, stats[i], *traces[i + 1].view,
                                         stats[i + 1], o.bootstrap, o.ci_level, o.seed));
    return {{"schema_version", kAnalysisSchemaVersion},
            {"kind", "polymoe.analysis"},
            {"definitions", definitions()},
            {"options", options_json(o)},
            {"traces", std::move(sections)},
            {"drift", std::move(drift)}};
}

}  // namespace polymoe::analysis
