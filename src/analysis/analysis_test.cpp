// Integration tests of analyze(): JSON schema and sample sizes, determinism (bit-identical across
// thread counts and runs), hand-built traces with known answers (co-activation, restricted JSD,
// units split by passage, language-specific and shared experts, expert reuse), drift, the CSV
// tables, and the errors a user sees for invalid traces and options.
#include "analysis/analysis.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "analysis/divergence.h"
#include "analysis/synthetic.h"
#include "core/error.h"
#include "core/parallel.h"

namespace polymoe::analysis {
namespace {

using nlohmann::json;

// Literal double data goes through static arrays: GCC 12.2 with -march=native miscompiles some
// std::vector<double> initializer lists (see divergence_test.cpp).
template <size_t N>
std::vector<double> vec(const double (&a)[N]) {
    return std::vector<double>(std::begin(a), std::end(a));
}

std::vector<data::LanguageInfo> romance_slavic() {
    return {{"spa", "Spanish", "Latn", "Romance", "1", ""},
            {"glg", "Galician", "Latn", "Romance", "2", "spa"},
            {"rus", "Russian", "Cyrl", "Slavic", "1", ""}};
}

AnalysisOptions quick() {
    AnalysisOptions o;
    o.bootstrap = 30;
    o.permutations = 30;
    o.split_half_repeats = 4;
    return o;
}

json run(const OwnedTrace& t, const AnalysisOptions& o) {
    const auto v = t.view();
    return analyze({{"", &v}}, o);
}

// Passes if f() throws polymoe::Error whose message contains `part`.
template <typename F>
::testing::AssertionResult throws_with(F&& f, const std::string& part) {
    try {
        f();
    } catch (const Error& e) {
        if (std::string(e.what()).find(part) != std::string::npos)
            return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure()
               << "message '" << e.what() << "' lacks '" << part << "'";
    }
    return ::testing::AssertionFailure() << "no polymoe::Error thrown";
}

trace::TraceHeader header(int E, int K, int R, std::vector<data::LanguageInfo> langs) {
    trace::TraceHeader h;
    h.num_experts = E;
    h.top_k = K;
    for (int r = 0; r < R; ++r)
        h.layers.push_back(r);
    h.languages = std::move(langs);
    h.label = "hand";
    return h;
}

// One token with the same experts at every layer (R = 1 in the hand tests).
void add(TraceBuilder* tb,
         int lang,
         uint32_t doc,
         int32_t passage,
         uint32_t pos,
         uint32_t tok,
         std::initializer_list<int> experts) {
    std::vector<uint16_t> ex;
    std::vector<float> w;
    for (int e : experts) {
        ex.push_back(static_cast<uint16_t>(e));
        w.push_back(0.25f);
    }
    tb->add(lang, doc, passage, pos, tok, ex.data(), w.data());
}

TEST(Analysis, SchemaSampleSizesAndInvariants) {
    SyntheticSpec s;
    s.languages = romance_slavic();
    s.E = 8;
    s.K = 2;
    s.R = 3;
    s.separation = 1.0;
    s.parallel = true;
    s.docs_per_lang = 12;
    const OwnedTrace t = make_synthetic_trace(s);
    const json j = run(t, quick());
    EXPECT_EQ(j["schema_version"], kAnalysisSchemaVersion);
    for (const char* k : {"definitions", "options", "traces", "drift"})
        EXPECT_TRUE(j.contains(k)) << k;
    const json& tr = j["traces"][0];
    for (const char* k :
         {"languages", "sample", "distributions", "entropy", "jsd", "paired_jsd", "specialization",
          "specific_experts", "reuse", "script", "coactivation", "vocabulary"})
        EXPECT_TRUE(tr.contains(k)) << k;
    // Every section names a definition that the definitions table explains.
    for (const char* k : {"distributions", "entropy", "jsd", "paired_jsd", "specialization",
                          "specific_experts", "reuse", "script", "coactivation", "vocabulary"})
        EXPECT_TRUE(j["definitions"].contains(tr[k]["definition"].get<std::string>())) << k;
    EXPECT_EQ(tr["sample"]["documents"], 36);
    EXPECT_EQ(tr["sample"]["tokens"], t.view().num_tokens());
    EXPECT_EQ(tr["sample"]["slots"], t.view().num_tokens() * 3 * 2);
    EXPECT_EQ(tr["entropy"]["units"], "bits");
    EXPECT_NEAR(tr["entropy"]["max"].get<double>(), 3.0, 1e-15);

    const json& layers = tr["jsd"]["layers"];
    ASSERT_EQ(layers.size(), 3u);
    for (const json& L : layers)
        for (int a = 0; a < 3; ++a)
            for (int b = 0; b < 3; ++b) {
                const json& x = L["bits"][a][b];
                EXPECT_EQ(x["value"], L["bits"][b][a]["value"]);  // symmetric
                EXPECT_NEAR(L["nats"][a][b]["value"].get<double>(),
                            x["value"].get<double>() * std::log(2.0), 1e-15);
                EXPECT_GE(x["value"].get<double>(), 0.0);
                EXPECT_LE(x["value"].get<double>(), 1.0);
                EXPECT_LE(x["lo"].get<double>(), x["hi"].get<double>());
                EXPECT_EQ(x["n_boot"], 30);
                if (a != b) {
                    const double p = L["permutation"][a][b]["p_value"];
                    EXPECT_GT(p, 0.0);
                    EXPECT_LE(p, 1.0);
                }
            }
    // Per-layer curves: mean over pairs and languages of exactly the reported values, with the
    // mean split-half floor and a permutation null; a well-separated trace clears both.
    for (size_t r = 0; r < layers.size(); ++r) {
        const json& L = layers[r];
        const double mean =
            (L["bits"][0][1]["value"].get<double>() + L["bits"][0][2]["value"].get<double>() +
             L["bits"][1][2]["value"].get<double>()) /
            3;
        EXPECT_NEAR(L["mean_bits"]["value"].get<double>(), mean, 1e-15);
        EXPECT_LE(L["mean_bits"]["lo"].get<double>(), mean);
        EXPECT_GE(L["mean_bits"]["hi"].get<double>(), mean);
        double floor = 0;
        for (int a = 0; a < 3; ++a)
            floor += L["split_half_bits"][a].get<double>() / 3;
        EXPECT_NEAR(L["mean_split_half_bits"].get<double>(), floor, 1e-15);
        EXPECT_GT(mean, L["mean_permutation"]["null_p95"].get<double>());
        double h = 0;
        for (int a = 0; a < 3; ++a)
            h += tr["entropy"]["values"][a][r]["value"].get<double>() / 3;
        EXPECT_NEAR(tr["entropy"]["mean_over_languages"][r]["value"].get<double>(), h, 1e-14);
    }
    // Distributions are probability vectors for every estimator.
    for (const char* est : {"counts", "weight", "renorm"})
        for (const json& lang : tr["distributions"]["estimators"][est])
            for (const json& p : lang) {
                double sum = 0;
                for (const json& v : p)
                    sum += v.get<double>();
                EXPECT_NEAR(sum, 1.0, 1e-12);
            }
    // Parallel passages: every pair shares all 12 passages.
    ASSERT_EQ(tr["paired_jsd"]["pairs"].size(), 3u);
    for (const json& p : tr["paired_jsd"]["pairs"])
        EXPECT_EQ(p["passages"], 12);
    // Reuse: glg -> spa, with rus as the unrelated high-resource language.
    ASSERT_EQ(tr["reuse"]["languages"].size(), 1u);
    EXPECT_EQ(tr["reuse"]["languages"][0]["language"], "glg");
    EXPECT_EQ(tr["reuse"]["languages"][0]["layers"][0]["unrelated"][0]["language"], "rus");
}

TEST(Analysis, BitIdenticalAcrossThreadCountsAndRuns) {
    SyntheticSpec s;
    s.languages = romance_slavic();
    s.separation = 0.5;
    s.parallel = true;
    s.chunk_tokens = 97;
    const OwnedTrace t = make_synthetic_trace(s);
    SyntheticSpec s2 = s;
    s2.routing_seed = 2;
    const OwnedTrace t2 = make_synthetic_trace(s2);
    const auto v = t.view(), v2 = t2.view();
    const int saved = num_threads();
    std::string dumps[3];
    for (int i = 0; i < 3; ++i) {
        set_num_threads(i == 0 ? 1 : 2);
        dumps[i] = analyze({{"a", &v}, {"b", &v2}}, quick()).dump();
    }
    set_num_threads(saved);
    EXPECT_EQ(dumps[0], dumps[1]);
    EXPECT_EQ(dumps[1], dumps[2]);
    // A different seed changes the intervals but not the point estimates.
    AnalysisOptions o = quick();
    o.seed = 7;
    const json a = json::parse(dumps[0]), b = analyze({{"a", &v}, {"b", &v2}}, o);
    EXPECT_EQ(a["traces"][0]["jsd"]["layers"][0]["bits"][0][1]["value"],
              b["traces"][0]["jsd"]["layers"][0]["bits"][0][1]["value"]);
    EXPECT_NE(a["traces"][0]["jsd"]["layers"][0]["bits"][0][1]["lo"],
              b["traces"][0]["jsd"]["layers"][0]["bits"][0][1]["lo"]);
}

TEST(Analysis, ChunkingDoesNotChangeStatistics) {
    SyntheticSpec s;
    s.languages = romance_slavic();
    s.chunk_tokens = 1 << 20;
    const OwnedTrace one = make_synthetic_trace(s);
    s.chunk_tokens = 13;
    const OwnedTrace many = make_synthetic_trace(s);
    ASSERT_GT(many.chunks.size(), 10u);
    const auto v1 = one.view(), v2 = many.view();
    const TraceStats a = collect_trace_stats(v1, {}), b = collect_trace_stats(v2, {});
    ASSERT_EQ(a.num_units(), b.num_units());
    EXPECT_EQ(a.unit_sums, b.unit_sums);  // counts are exact
    EXPECT_EQ(a.lang_sums[0], b.lang_sums[0]);
    for (int k = 1; k < kNumEstimators; ++k)
        for (size_t i = 0; i < a.lang_sums[k].size(); ++i)
            ASSERT_NEAR(a.lang_sums[k][i], b.lang_sums[k][i],
                        1e-12 * std::max(1.0, a.lang_sums[k][i]));
    EXPECT_EQ(a.coact, b.coact);
}

TEST(Analysis, HandTraceCoactivationUnitsAndRestrictedJsd) {
    // Language x: tokens 1, 2 (ids shared with y) routed {0,1}; token 5 (x only) routed {2,3}.
    // Language y: tokens 1, 2 routed {0,1}; token 9 (y only) routed {4,5}.
    TraceBuilder tb(
        header(6, 2, 1, {{"x", "", "Latn", "", "1", ""}, {"y", "", "Latn", "", "1", ""}}), 3);
    add(&tb, 0, 0, 7, 0, 1, {0, 1});
    add(&tb, 0, 0, 7, 1, 5, {2, 3});
    add(&tb, 0, 0, -1, 2, 2, {1, 0});  // same document, no passage: a second unit
    add(&tb, 0, 0, -1, 3, 5, {3, 2});
    add(&tb, 1, 1, 7, 0, 2, {0, 1});
    add(&tb, 1, 1, 7, 1, 9, {4, 5});
    add(&tb, 1, 1, 7, 2, 1, {1, 0});
    add(&tb, 1, 1, 7, 3, 9, {5, 4});
    const OwnedTrace t = tb.finish();
    AnalysisOptions o = quick();
    o.coactivation_matrices = true;
    const json tr = run(t, o)["traces"][0];
    EXPECT_EQ(tr["sample"]["documents"], 2);
    EXPECT_EQ(tr["sample"]["units"], 3);
    // Full JSD: x = (1/4, 1/4, 1/4, 1/4, 0, 0), y = (1/4, 1/4, 0, 0, 1/4, 1/4): 1/2 bit.
    EXPECT_NEAR(tr["jsd"]["layers"][0]["bits"][0][1]["value"].get<double>(), 0.5, 1e-15);
    // Restricted to shared ids {1, 2}: both route {0, 1} only -> 0.
    EXPECT_NEAR(tr["script"]["layers"][0]["restricted_bits"][0][1].get<double>(), 0.0, 1e-15);
    EXPECT_EQ(tr["script"]["shared_token_ids"][0][1], 2);
    EXPECT_NEAR(tr["script"]["vocab_overlap"][0][1].get<double>(), 2.0 / 3.0, 1e-15);
    // Co-activation of x: pairs {0,1} twice and {2,3} twice out of 4 tokens (1 pair each).
    const json& cx = tr["coactivation"]["languages"][0]["layers"][0];
    EXPECT_NEAR(cx["frequency"][0][1].get<double>(), 0.5, 1e-15);
    EXPECT_NEAR(cx["frequency"][1][0].get<double>(), 0.5, 1e-15);
    EXPECT_NEAR(cx["frequency"][0][2].get<double>(), 0.0, 1e-15);
    // lift(0,1) = P(both) / (P(0) P(1)) = (2/4) / ((2/4)(2/4)) = 2.
    EXPECT_NEAR(cx["lift"][0][1].get<double>(), 2.0, 1e-15);
    EXPECT_TRUE(cx["lift"][0][4].is_null());  // expert 4 never used by x
    EXPECT_EQ(cx["top_pairs"][0]["experts"], json::array({0, 1}));
    // Paired: passage 7 only (x's unit with passage -1 is not part of it).
    ASSERT_EQ(tr["paired_jsd"]["pairs"].size(), 1u);
    EXPECT_EQ(tr["paired_jsd"]["pairs"][0]["passages"], 1);
    // x on passage 7 = (1/4,1/4,1/4,1/4,0,0), y = (1/4,1/4,0,0,1/4,1/4) -> 1/2 bit.
    EXPECT_NEAR(tr["paired_jsd"]["pairs"][0]["layers"][0]["mean"]["value"].get<double>(), 0.5,
                1e-15);
    // Top tokens of expert 0: ids 1 and 2 (2 slots each, in id order), all their occurrences.
    const json& top = tr["vocabulary"]["layers"][0]["experts"][0]["top_tokens"];
    ASSERT_EQ(top.size(), 2u);
    EXPECT_EQ(top[0]["token"], 1);
    EXPECT_EQ(top[0]["count"], 2);
    EXPECT_NEAR(top[0]["share_of_token"].get<double>(), 1.0, 1e-15);
}

TEST(Analysis, SpecificAndSharedExpertsAreFlaggedStably) {
    // 3 languages, 8 experts: expert 0 only language 0, expert 1 only language 1; experts 2-7
    // used by all three at >= 0.1 > 0.5/E (shared), none dominated by one language.
    SyntheticSpec s;
    s.E = 8;
    s.K = 2;
    s.R = 1;
    s.docs_per_lang = 30;
    s.doc_noise = 0.1;
    s.uniform_mix = 0.0;
    static constexpr double p0[] = {0.3, 0, 0.1, 0.1, 0.125, 0.125, 0.125, 0.125};
    static constexpr double p1[] = {0, 0.3, 0.1, 0.1, 0.125, 0.125, 0.125, 0.125};
    static constexpr double p2[] = {0, 0, 0.175, 0.175, 0.1625, 0.1625, 0.1625, 0.1625};
    s.lang_probs = {vec(p0), vec(p1), vec(p2)};
    const OwnedTrace t = make_synthetic_trace(s);
    const json L = run(t, quick())["traces"][0]["specific_experts"]["layers"][0];
    ASSERT_EQ(L["specific"].size(), 2u) << L.dump();
    EXPECT_EQ(L["specific"][0]["expert"], 0);
    EXPECT_EQ(L["specific"][0]["language"], "l0");
    EXPECT_NEAR(L["specific"][0]["share"].get<double>(), 1.0, 1e-15);
    EXPECT_GE(L["specific"][0]["stability"].get<double>(), 0.99);
    EXPECT_EQ(L["specific"][1]["expert"], 1);
    EXPECT_EQ(L["specific"][1]["language"], "l1");
    ASSERT_EQ(L["shared"].size(), 6u);
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(L["shared"][i]["expert"], 2 + i);
        EXPECT_GE(L["shared"][i]["stability"].get<double>(), 0.9);
    }
    EXPECT_EQ(L["num_specific"]["value"], 2);
    EXPECT_EQ(L["specific_per_language"]["l2"], 0);
}

TEST(Analysis, ReuseOfRelatedLanguageExperts) {
    // glg routes like spa; rus routes to other experts. glg's mass on spa's top-2 must beat its
    // mass on rus's top-2 and the random-set baseline (expected 2/8).
    SyntheticSpec s;
    s.languages = romance_slavic();
    s.E = 8;
    s.K = 2;
    s.R = 2;
    s.docs_per_lang = 20;
    static constexpr double spa[] = {0.35, 0.25, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05};
    static constexpr double rus[] = {0.05, 0.05, 0.05, 0.05, 0.1, 0.1, 0.25, 0.35};
    auto two = [](const auto& p) {
        std::vector<double> v = vec(p);
        v.insert(v.end(), std::begin(p), std::end(p));
        return v;
    };
    s.lang_probs = {two(spa), two(spa), two(rus)};
    const OwnedTrace t = make_synthetic_trace(s);
    const json re = run(t, quick())["traces"][0]["reuse"];
    EXPECT_EQ(re["m"], 2);
    EXPECT_EQ(re["high_resource"], json::array({"spa", "rus"}));
    const json& L = re["languages"][0]["layers"][1];
    const double related = L["related"]["value"], unrelated = L["unrelated"][0]["share"]["value"];
    EXPECT_GT(related, 0.45);
    EXPECT_LT(unrelated, 0.2);
    EXPECT_GT(L["margin"]["lo"].get<double>(), 0.2);
    EXPECT_NEAR(L["random"]["expected"].get<double>(), 0.25, 1e-15);
    EXPECT_GT(related, L["random"]["p95"].get<double>());
    EXPECT_LT(L["random"]["p_value_related"].get<double>(), 0.05);
    EXPECT_LE(related, L["self"]["value"].get<double>() + 1e-12);
}

TEST(Analysis, DriftIdenticalShiftedAndMismatched) {
    SyntheticSpec s;
    s.languages = romance_slavic();
    s.separation = 1.0;
    const OwnedTrace a = make_synthetic_trace(s);
    const OwnedTrace same = make_synthetic_trace(s);
    SyntheticSpec s2 = s;
    s2.routing_seed = 99;  // same tokens, routing drawn again from the same distributions
    const OwnedTrace redrawn = make_synthetic_trace(s2);
    const auto va = a.view(), vs = same.view(), vr = redrawn.view();
    AnalysisOptions o = quick();
    const json d = analyze({{"base", &va}, {"same", &vs}, {"redrawn", &vr}}, o)["drift"];
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0]["from"], "base");
    EXPECT_EQ(d[1]["to"], "redrawn");
    for (const json& l : d[0]["languages"])
        for (const json& L : l["layers"]) {
            EXPECT_EQ(L["overlap"]["value"], 1.0);
            EXPECT_EQ(L["jsd_bits"]["value"], 0.0);
            for (const json& c : L["change"])
                EXPECT_EQ(c, 0.0);
        }
    for (const json& l : d[1]["languages"])
        for (const json& L : l["layers"]) {
            const double ov = L["overlap"]["value"];
            EXPECT_GT(ov, 0.05);
            EXPECT_LT(ov, 0.95);
            EXPECT_LE(L["overlap"]["lo"].get<double>(), ov);
            EXPECT_GE(L["overlap"]["hi"].get<double>(), ov);
        }
    // Different documents: a clear error naming the first differing token.
    SyntheticSpec s3 = s;
    s3.seed = 5;
    const OwnedTrace other = make_synthetic_trace(s3);
    const auto vo = other.view();
    EXPECT_TRUE(throws_with(
        [&] {
            analyze({{"base", &va}, {"other", &vo}}, o);
        },
        "expected traces of identical tokens"));
    o.drift = false;
    EXPECT_NO_THROW(analyze({{"base", &va}, {"other", &vo}}, o));
}

TEST(Analysis, CsvTablesAreTidy) {
    SyntheticSpec s;
    s.languages = romance_slavic();
    s.R = 2;
    s.parallel = true;
    const OwnedTrace a = make_synthetic_trace(s);
    SyntheticSpec s2 = s;
    s2.routing_seed = 3;
    const OwnedTrace b = make_synthetic_trace(s2);
    const auto va = a.view(), vb = b.view();
    const json j = analyze({{"a", &va}, {"b", &vb}}, quick());
    const auto dir = std::filesystem::path(::testing::TempDir()) /
                     ("polymoe_analysis_csv_" + std::to_string(::getpid()));
    const auto files = write_csv_tables(j, dir.string());
    ASSERT_EQ(files.size(), 8u);
    auto lines = [](const std::string& path) {
        std::ifstream f(path);
        std::vector<std::string> out;
        for (std::string l; std::getline(f, l);)
            out.push_back(l);
        return out;
    };
    const auto jsd = lines((dir / "jsd.csv").string());
    ASSERT_FALSE(jsd.empty());
    EXPECT_EQ(jsd[0].rfind("trace,layer,language_a,language_b,bits,bits_lo,bits_hi", 0), 0u);
    EXPECT_EQ(jsd.size(), 1u + 2 * 2 * 3);  // traces x layers x pairs
    const auto dist = lines((dir / "distributions.csv").string());
    EXPECT_EQ(dist.size(), 1u + 2 * 3 * 3 * 2 * 16);  // traces x est x langs x layers x E
    const auto drift = lines((dir / "drift.csv").string());
    EXPECT_EQ(drift.size(), 1u + 3 * 2);
    // Every row has as many fields as the header (no field contains a comma here).
    for (const auto& f : files) {
        const auto ls = lines(f);
        ASSERT_FALSE(ls.empty()) << f;
        const auto width = std::count(ls[0].begin(), ls[0].end(), ',');
        for (const auto& l : ls)
            EXPECT_EQ(std::count(l.begin(), l.end(), ','), width) << f << ": " << l;
    }
    std::filesystem::remove_all(dir);
}

TEST(Analysis, ErrorsNameTheProblem) {
    const auto h = header(4, 2, 1, {{"x", "", "", "", "1", ""}, {"y", "", "", "", "1", ""}});
    auto one = [&](auto fill) {
        TraceBuilder tb(h, 100);
        fill(&tb);
        return tb.finish();
    };
    const AnalysisOptions o = quick();
    auto analyze_one = [&](const OwnedTrace& t) {
        const auto v = t.view();
        analyze({{"", &v}}, o);
    };
    EXPECT_TRUE(throws_with([&] { analyze_one(one([](TraceBuilder*) {})); }, "empty trace"));
    EXPECT_TRUE(throws_with(
        [&] {
            analyze_one(one([](TraceBuilder* tb) {
                add(tb, 0, 3, -1, 0, 1, {0, 1});
                add(tb, 1, 3, -1, 1, 1, {0, 1});
            }));
        },
        "document 3 has tokens of two languages"));
    EXPECT_TRUE(throws_with(
        [&] { analyze_one(one([](TraceBuilder* tb) {
                  add(tb, 0, 0, -1, 0, 1, {0, 4});
              })); },
        "expected an expert id below 4 (E), found 4"));
    EXPECT_TRUE(throws_with(
        [&] { analyze_one(one([](TraceBuilder* tb) {
                  add(tb, 0, 0, -1, 0, 1, {2, 2});
              })); },
        "expected distinct top-k experts"));
    EXPECT_TRUE(throws_with(
        [&] { analyze_one(one([](TraceBuilder* tb) {
                  add(tb, 5, 0, -1, 0, 1, {0, 1});
              })); },
        "expected a language index below 2"));
    EXPECT_TRUE(throws_with(
        [&] {
            analyze_one(one([](TraceBuilder* tb) {
                const uint16_t ex[2] = {0, 1};
                const float w[2] = {0.5f, std::nanf("")};
                tb->add(0, 0, -1, 0, 1, ex, w);
            }));
        },
        "expected a finite non-negative routing weight"));
    const OwnedTrace good = one([](TraceBuilder* tb) {
        add(tb, 0, 0, -1, 0, 1, {0, 1});
        add(tb, 1, 1, -1, 0, 1, {2, 3});
    });
    const auto v = good.view();
    AnalysisOptions bad = o;
    bad.ci_level = 1.5;
    EXPECT_TRUE(throws_with([&] { analyze({{"", &v}}, bad); }, "ci_level"));
    bad = o;
    bad.vocab_overlap.languages = {"x"};
    bad.vocab_overlap.values.assign(1, 1.0);
    EXPECT_TRUE(throws_with([&] { analyze({{"", &v}}, bad); }, "expected a row for language y"));
    bad = o;
    bad.reuse_top_m = 9;
    EXPECT_TRUE(throws_with([&] { analyze({{"", &v}}, bad); }, "reuse_top_m"));
    EXPECT_TRUE(throws_with([&] { analyze({}, o); }, "at least one trace"));
    EXPECT_TRUE(throws_with([&] { parse_estimator("mass"); }, "counts, weight or renorm"));
}

TEST(Analysis, DegenerateInputsGiveNullsNotCrashes) {
    // One language: no pairs, NMI undefined (H(L) = 0) -> null.
    SyntheticSpec s;
    s.nL = 1;
    s.docs_per_lang = 3;
    const json one = run(make_synthetic_trace(s), quick())["traces"][0];
    EXPECT_TRUE(one["specialization"]["layers"][0]["nmi"]["value"].is_null());
    EXPECT_TRUE(one["specialization"]["trend"]["slope"]["value"].is_null());
    EXPECT_EQ(one["jsd"]["layers"][0]["bits"][0][0]["value"], 0.0);
    // One document per language: the bootstrap cannot vary, split halves do not exist.
    s.nL = 2;
    s.docs_per_lang = 1;
    const json single = run(make_synthetic_trace(s), quick())["traces"][0];
    const json& x = single["jsd"]["layers"][0]["bits"][0][1];
    EXPECT_EQ(x["lo"], x["value"]);
    EXPECT_EQ(x["hi"], x["value"]);
    EXPECT_TRUE(single["jsd"]["layers"][0]["split_half_bits"][0].is_null());
    // No weights recorded: the weight estimator is refused, its distributions are null.
    TraceBuilder tb(header(4, 2, 1, {{"x", "", "", "", "1", ""}, {"y", "", "", "", "1", ""}}), 10);
    const uint16_t ex[2] = {0, 1};
    const float w[2] = {0.0f, 0.0f};
    tb.add(0, 0, -1, 0, 1, ex, w);
    tb.add(1, 1, -1, 0, 1, ex, w);
    const OwnedTrace nw = tb.finish();
    AnalysisOptions o = quick();
    const json t = run(nw, o)["traces"][0];
    EXPECT_TRUE(t["distributions"]["estimators"]["weight"][0][0][0].is_null());
    EXPECT_NEAR(t["distributions"]["estimators"]["renorm"][0][0][0].get<double>(), 0.5, 1e-15);
    o.estimator = Estimator::kWeight;
    EXPECT_TRUE(throws_with([&] { run(nw, o); }, "no routing-weight mass"));
}

TEST(Analysis, GivenVocabOverlapIsUsed) {
    SyntheticSpec s;
    s.languages = romance_slavic();
    const OwnedTrace t = make_synthetic_trace(s);
    AnalysisOptions o = quick();
    static constexpr double given[] = {1, 0.1, 0.2, 0.1, 1, 0.9, 0.2, 0.9, 1};
    o.vocab_overlap = {{"rus", "glg", "spa"}, vec(given)};
    const json sc = run(t, o)["traces"][0]["script"];
    EXPECT_EQ(sc["overlap_source"], "given");
    // Rows follow the trace's language order (spa, glg, rus).
    EXPECT_EQ(sc["vocab_overlap"][0][1], 0.9);
    EXPECT_EQ(sc["vocab_overlap"][0][2], 0.2);
    EXPECT_TRUE(sc["correlation_mean_jsd"]["value"].is_number());
}

}  // namespace
}  // namespace polymoe::analysis
