// Statistical sanity of the resampling machinery on synthetic traces with known truth:
//  - identical routing for all languages: JSD and NMI p-values are not small (calibrated over
//    many data sets) and the between-language JSD is of the order of the split-half floor;
//  - routing to disjoint experts: detected (p < 0.01, NMI = 1, CI excluding 0);
//  - the 95% percentile-bootstrap interval covers the true value at about its nominal rate
//    over 200 simulated data sets (truth: the same statistic on a data set 100x larger).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "analysis/analysis.h"
#include "analysis/synthetic.h"

namespace polymoe::analysis {
namespace {

using nlohmann::json;

AnalysisOptions lean(int boot, int perm) {
    AnalysisOptions o;
    o.bootstrap = boot;
    o.permutations = perm;
    o.split_half_repeats = 0;
    o.paired = false;
    o.restricted = false;
    o.coactivation = false;
    o.top_tokens = 0;
    o.drift = false;
    return o;
}

json analyze_one(const SyntheticSpec& s, const AnalysisOptions& o) {
    const OwnedTrace t = make_synthetic_trace(s);
    const auto v = t.view();
    return analyze({{"", &v}}, o)["traces"][0];
}

TEST(Statistics, IdenticalRoutingIsNotSignificant) {
    // 12 data sets x (3 pairs x 2 layers JSD + 2 layers NMI) p-values under the null.
    int n = 0, small = 0;
    double sum = 0;
    for (int rep = 0; rep < 12; ++rep) {
        SyntheticSpec s;
        s.nL = 3;
        s.R = 2;
        s.docs_per_lang = 16;
        s.tokens_per_doc = 30;
        s.seed = 100 + rep;
        s.routing_seed = 200 + rep;
        s.lang_probs.assign(3, synthetic_lang_probs(s)[0]);  // every language routes as l0
        AnalysisOptions o = lean(0, 200);
        o.seed = static_cast<uint64_t>(rep);
        const json t = analyze_one(s, o);
        for (int r = 0; r < 2; ++r) {
            const json& L = t["jsd"]["layers"][r];
            for (int a = 0; a < 3; ++a)
                for (int b = a + 1; b < 3; ++b) {
                    const double p = L["permutation"][a][b]["p_value"];
                    sum += p;
                    small += p < 0.05;
                    ++n;
                }
            const double p = t["specialization"]["layers"][r]["permutation"]["p_value"];
            sum += p;
            small += p < 0.05;
            ++n;
        }
    }
    std::printf("[ null   ] %d p-values: mean %.3f, %d below 0.05\n", n, sum / n, small);
    EXPECT_GT(sum / n, 0.35);
    EXPECT_LT(sum / n, 0.65);
    EXPECT_LE(small, n / 6);  // nominal 5%; well below 1/6 unless the test is anti-conservative
}

TEST(Statistics, IdenticalRoutingJsdIsNearTheSplitHalfFloor) {
    SyntheticSpec s;
    s.nL = 2;
    s.R = 1;
    s.docs_per_lang = 40;
    s.lang_probs.assign(2, synthetic_lang_probs(s)[0]);
    AnalysisOptions o = lean(50, 100);
    o.split_half_repeats = 20;
    const json t = analyze_one(s, o);
    const json& L = t["jsd"]["layers"][0];
    const double jsd = L["bits"][0][1]["value"];
    const double floor0 = L["split_half_bits"][0], floor1 = L["split_half_bits"][1];
    // Halves have half the documents, so their JSD is about twice the full-sample noise floor.
    EXPECT_LT(jsd, 2 * std::max(floor0, floor1));
    EXPECT_LE(jsd, L["permutation"][0][1]["null_p95"].get<double>() * 1.5);
    EXPECT_GT(L["permutation"][0][1]["p_value"].get<double>(), 0.01);
}

TEST(Statistics, DisjointRoutingIsDetected) {
    // Language a routes only to experts 4a .. 4a+3 of E = 12.
    SyntheticSpec s;
    s.nL = 3;
    s.E = 12;
    s.K = 2;
    s.R = 2;
    s.docs_per_lang = 15;
    s.lang_probs.assign(3, std::vector<double>(24, 0.0));
    for (int a = 0; a < 3; ++a)
        for (int r = 0; r < 2; ++r)
            for (int e = 4 * a; e < 4 * a + 4; ++e)
                s.lang_probs[a][r * 12 + e] = 0.1 + 0.05 * (e % 4);
    const json t = analyze_one(s, lean(100, 200));
    for (int r = 0; r < 2; ++r) {
        const json& S = t["specialization"]["layers"][r];
        EXPECT_NEAR(S["nmi"]["value"].get<double>(), 1.0, 1e-12);
        EXPECT_GT(S["nmi"]["lo"].get<double>(), 0.99);
        EXPECT_LT(S["permutation"]["p_value"].get<double>(), 0.01);
        EXPECT_NEAR(S["nmi_balanced"]["value"].get<double>(), 1.0, 1e-12);
        const json& L = t["jsd"]["layers"][r];
        for (int a = 0; a < 3; ++a)
            for (int b = a + 1; b < 3; ++b) {
                EXPECT_NEAR(L["bits"][a][b]["value"].get<double>(), 1.0, 1e-12);
                EXPECT_LT(L["permutation"][a][b]["p_value"].get<double>(), 0.01);
                EXPECT_LT(L["permutation"][a][b]["null_p95"].get<double>(), 0.9);
            }
        // Every expert is specific to its language, with full stability.
        const json& X = t["specific_experts"]["layers"][r];
        EXPECT_EQ(X["specific"].size(), 12u);
        for (const json& x : X["specific"])
            EXPECT_EQ(x["stability"], 1.0);
    }
}

TEST(Statistics, BootstrapCoverageIsNominal) {
    // Two related languages with shifted routing (separation 0.7), 30 documents each.
    SyntheticSpec s;
    s.languages = {{"spa", "", "Latn", "", "1", ""},
                   {"glg", "", "Latn", "", "2", "spa"},
                   {"rus", "", "Cyrl", "", "1", ""}};
    s.E = 8;
    s.K = 2;
    s.R = 1;
    s.separation = 0.7;
    s.docs_per_lang = 30;
    s.tokens_per_doc = 40;
    s.doc_noise = 0.4;
    s.lang_probs = synthetic_lang_probs(s);  // fixed population; data sets vary by seed
    struct Stat {
        const char* name;
        json (*get)(const json&);
    };
    const Stat stats[] = {
        {"entropy(spa)", [](const json& t) { return t["entropy"]["values"][0][0]; }},
        {"jsd(spa,rus)", [](const json& t) { return t["jsd"]["layers"][0]["bits"][0][2]; }},
        {"nmi", [](const json& t) { return t["specialization"]["layers"][0]["nmi"]; }},
        {"reuse(glg->spa)",
         [](const json& t) { return t["reuse"]["languages"][0]["layers"][0]["related"]; }},
    };
    // Truth: the same statistics on 100x the documents.
    SyntheticSpec big = s;
    big.docs_per_lang = 3000;
    big.seed = 999;
    big.routing_seed = 999;
    const json truth_t = analyze_one(big, lean(0, 0));
    const int kSims = 200;
    int covered[4] = {0, 0, 0, 0};
    for (int sim = 0; sim < kSims; ++sim) {
        SyntheticSpec d = s;
        d.seed = 1000 + sim;
        d.routing_seed = 5000 + sim;
        AnalysisOptions o = lean(200, 0);
        o.seed = static_cast<uint64_t>(sim);
        const json t = analyze_one(d, o);
        for (int i = 0; i < 4; ++i) {
            const json ci = stats[i].get(t);
            const double truth = stats[i].get(truth_t)["value"];
            covered[i] += ci["lo"].get<double>() <= truth && truth <= ci["hi"].get<double>();
        }
    }
    for (int i = 0; i < 4; ++i) {
        const double rate = static_cast<double>(covered[i]) / kSims;
        std::printf("[ cover  ] %-16s 95%% CI coverage %.3f over %d data sets\n", stats[i].name,
                    rate, kSims);
        EXPECT_GE(rate, 0.85) << stats[i].name;
        EXPECT_LE(rate, 0.99) << stats[i].name;
    }
}

}  // namespace
}  // namespace polymoe::analysis
