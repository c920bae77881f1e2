// Agreement with numpy/scipy: tests/fixtures/analysis holds a small synthetic trace as .npy columns
// and expected.json computed by tools/analysis_reference.py (scipy's jensenshannon and entropy, an
// independent NMI formula). Every deterministic quantity of analyze() must match to 1e-9. The trace
// is cut into 37-token chunks so documents span chunk boundaries. A negative control moves one
// routing slot and checks that the comparison then fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "analysis/analysis.h"
#include "analysis/synthetic.h"
#include "io/npy.h"

namespace polymoe::analysis {
namespace {

using nlohmann::json;
constexpr double kTol = 1e-9;

std::string fixture(const std::string& name) {
    return std::string(POLYMOE_SOURCE_DIR) + "/tests/fixtures/analysis/" + name;
}

json load_expected() {
    std::ifstream f(fixture("expected.json"));
    EXPECT_TRUE(f.good()) << fixture("expected.json");
    return json::parse(f);
}

// Builds trace A (or B: the *_b routing columns) from the fixture; `tamper` moves one slot.
OwnedTrace load_trace(const json& want, bool b, bool tamper = false) {
    const auto lang = io::read_npy(fixture("lang.npy"));
    const auto doc = io::read_npy(fixture("doc.npy"));
    const auto passage = io::read_npy(fixture("passage.npy"));
    const auto position = io::read_npy(fixture("position.npy"));
    const auto token = io::read_npy(fixture("token.npy"));
    const auto expert = io::read_npy(fixture(b ? "expert_b.npy" : "expert.npy"));
    const auto weight = io::read_npy(fixture(b ? "weight_b.npy" : "weight.npy"));
    trace::TraceHeader h;
    h.num_experts = want.at("num_experts");
    h.top_k = want.at("top_k");
    h.layers = want.at("layers").get<std::vector<int>>();
    for (const json& l : want.at("languages"))
        h.languages.push_back({l.at("code"), l.at("name"), l.at("script"), l.at("family"),
                               l.at("stage"), l.at("related")});
    h.label = b ? "B" : "A";
    const int R = h.num_layers(), K = h.top_k;
    const int64_t n = lang.numel();
    EXPECT_EQ(expert.shape, (std::vector<int64_t>{R, n, K}));
    EXPECT_EQ(weight.descr, "<f4");
    TraceBuilder tb(h, 37);
    std::vector<uint16_t> ex(static_cast<size_t>(R) * K);
    std::vector<float> w(static_cast<size_t>(R) * K);
    for (int64_t i = 0; i < n; ++i) {
        for (int r = 0; r < R; ++r)
            for (int k = 0; k < K; ++k) {
                const int64_t src = (r * n + i) * K + k;
                ex[static_cast<size_t>(r * K + k)] = static_cast<uint16_t>(expert.get_int(src));
                w[static_cast<size_t>(r * K + k)] = static_cast<float>(weight.get_double(src));
            }
        if (tamper && i == 5) {
            // Route the token's second slot at layer 0 to an expert not in its top-k set.
            uint16_t e = static_cast<uint16_t>((ex[1] + 1) % h.num_experts);
            if (e == ex[0]) e = static_cast<uint16_t>((e + 1) % h.num_experts);
            ex[1] = e;
        }
        tb.add(static_cast<int>(lang.get_int(i)), static_cast<uint32_t>(doc.get_int(i)),
               static_cast<int32_t>(passage.get_int(i)), static_cast<uint32_t>(position.get_int(i)),
               static_cast<uint32_t>(token.get_int(i)), ex.data(), w.data());
    }
    return tb.finish();
}

// Largest |got - expected| over every successful comparison (printed at the end of the suite).
double g_max_diff = 0;

// Recursive comparison: same shape, numbers within tol, null where expected is null.
::testing::AssertionResult near(const json& got,
                                const json& want,
                                const std::string& path,
                                double tol = kTol) {
    if (want.is_null()) {
        if (got.is_null()) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << path << ": expected null, got " << got.dump();
    }
    if (want.is_array()) {
        if (!got.is_array() || got.size() != want.size())
            return ::testing::AssertionFailure()
                   << path << ": expected an array of " << want.size() << ", got " << got.dump();
        for (size_t i = 0; i < want.size(); ++i) {
            auto r = near(got[i], want[i], path + "[" + std::to_string(i) + "]", tol);
            if (!r) return r;
        }
        return ::testing::AssertionSuccess();
    }
    if (!got.is_number())
        return ::testing::AssertionFailure() << path << ": expected a number, got " << got.dump();
    const double g = got.get<double>(), w = want.get<double>();
    if (std::abs(g - w) <= tol) {
        g_max_diff = std::max(g_max_diff, std::abs(g - w));
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << path << ": got " << g << ", expected " << w << " (diff " << std::abs(g - w) << ")";
}

// Maps a [..][a][b]... table of CI objects to their "value".
json values(const json& j) {
    if (j.is_array()) {
        json out = json::array();
        for (const json& x : j)
            out.push_back(values(x));
        return out;
    }
    if (j.is_object() && j.contains("value")) return j.at("value");
    return j;
}

class Fixture : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        want_ = new json(load_expected());
        a_ = new OwnedTrace(load_trace(*want_, false));
        b_ = new OwnedTrace(load_trace(*want_, true));
        AnalysisOptions o;
        o.bootstrap = 20;
        o.permutations = 20;
        o.split_half_repeats = 3;
        o.coactivation_matrices = true;
        const auto va = a_->view(), vb = b_->view();
        got_ = new json(analyze({{"A", &va}, {"B", &vb}}, o));
    }
    static void TearDownTestSuite() {
        std::printf("[ numpy  ] max |C++ - numpy/scipy| over all compared values: %.3g\n",
                    g_max_diff);
        delete want_;
        delete a_;
        delete b_;
        delete got_;
    }
    const json& want() const { return *want_; }
    const json& t() const { return (*got_)["traces"][0]; }
    const json& got() const { return *got_; }
    static json* want_;
    static OwnedTrace *a_, *b_;
    static json* got_;
};
json* Fixture::want_ = nullptr;
OwnedTrace* Fixture::a_ = nullptr;
OwnedTrace* Fixture::b_ = nullptr;
json* Fixture::got_ = nullptr;

TEST_F(Fixture, SampleSizesAndLanguages) {
    EXPECT_EQ(t()["sample"]["tokens"], want()["tokens"]);
    EXPECT_EQ(t()["sample"]["documents"], want()["num_documents"]);
    EXPECT_EQ(t()["absent_languages"], json::array({"fra"}));
    ASSERT_EQ(t()["languages"].size(), 5u);
    for (size_t a = 0; a < 5; ++a)
        EXPECT_EQ(t()["languages"][a]["tokens"], want()["lang_tokens"][a]);
    // spa's document with passages 110 and -1 is two units.
    EXPECT_EQ(t()["sample"]["units"].get<int>(), want()["num_documents"].get<int>() + 1);
}

TEST_F(Fixture, DistributionsAndEntropiesAllEstimators) {
    for (const char* est : {"counts", "weight", "renorm"}) {
        EXPECT_TRUE(near(t()["distributions"]["estimators"][est], want()["distributions"][est],
                         std::string("distributions.") + est));
        EXPECT_TRUE(near(t()["entropy"]["by_estimator"][est], want()["entropy_bits"][est],
                         std::string("entropy.") + est));
    }
    EXPECT_TRUE(
        near(values(t()["entropy"]["values"]), want()["entropy_bits"]["counts"], "entropy.values"));
}

TEST_F(Fixture, JsdBitsNatsNormalized) {
    const json& layers = t()["jsd"]["layers"];
    for (size_t r = 0; r < layers.size(); ++r) {
        const std::string p = "jsd.layers[" + std::to_string(r) + "]";
        for (const char* est : {"counts", "weight", "renorm"})
            EXPECT_TRUE(near(layers[r]["by_estimator_bits"][est], want()["jsd_bits"][est][r],
                             p + ".by_estimator_bits." + est));
        EXPECT_TRUE(near(values(layers[r]["bits"]), want()["jsd_bits"]["counts"][r], p + ".bits"));
        EXPECT_TRUE(near(values(layers[r]["nats"]), want()["jsd_nats"]["counts"][r], p + ".nats"));
        json wz = want()["jsd_normalized"]["counts"][r];
        for (size_t a = 0; a < wz.size(); ++a)
            wz[a][a] = 0.0;  // 0/0 on the diagonal (numpy: nan), defined as 0
        EXPECT_TRUE(near(values(layers[r]["normalized"]), wz, p + ".normalized"));
    }
}

TEST_F(Fixture, PrimaryEstimatorWeightAndRenorm) {
    // With weight or renorm as the primary estimator, the bootstrapped entropy and JSD values come
    // from the per-unit sums of that estimator and must equal numpy's too.
    for (Estimator est : {Estimator::kWeight, Estimator::kRenorm}) {
        AnalysisOptions o;
        o.estimator = est;
        o.bootstrap = 5;
        o.permutations = 5;
        o.drift = false;
        const auto v = a_->view();
        const json tr = analyze({{"A", &v}}, o)["traces"][0];
        const std::string name = estimator_name(est);
        EXPECT_TRUE(
            near(values(tr["entropy"]["values"]), want()["entropy_bits"][name], "entropy." + name));
        for (size_t r = 0; r < tr["jsd"]["layers"].size(); ++r)
            EXPECT_TRUE(near(values(tr["jsd"]["layers"][r]["bits"]), want()["jsd_bits"][name][r],
                             "jsd." + name));
    }
}

TEST_F(Fixture, PairedJsd) {
    const json& pairs = t()["paired_jsd"]["pairs"];
    ASSERT_EQ(pairs.size(), want()["paired"].size());
    for (size_t i = 0; i < pairs.size(); ++i) {
        const json& w = want()["paired"][i];
        EXPECT_EQ(pairs[i]["a"], w["a"]);
        EXPECT_EQ(pairs[i]["b"], w["b"]);
        EXPECT_EQ(pairs[i]["passages"], w["passages"]);
        json mean = json::array(), agg = json::array();
        for (const json& L : pairs[i]["layers"]) {
            mean.push_back(L["mean"]["value"]);
            agg.push_back(L["aggregate"]);
        }
        EXPECT_TRUE(near(mean, w["mean"], "paired.mean"));
        EXPECT_TRUE(near(agg, w["aggregate"], "paired.aggregate"));
    }
}

TEST_F(Fixture, NmiAndTrend) {
    json nmi = json::array(), bal = json::array();
    for (const json& L : t()["specialization"]["layers"]) {
        nmi.push_back(L["nmi"]["value"]);
        bal.push_back(L["nmi_balanced"]["value"]);
    }
    EXPECT_TRUE(near(nmi, want()["nmi"], "nmi"));
    EXPECT_TRUE(near(bal, want()["nmi_balanced"], "nmi_balanced"));
    const json& tr = t()["specialization"]["trend"];
    EXPECT_TRUE(near(tr["slope"]["value"], want()["nmi_slope"], "slope"));
    EXPECT_TRUE(near(tr["last_minus_first"]["value"], want()["nmi_last_minus_first"], "diff"));
    EXPECT_TRUE(near(tr["slope_balanced"]["value"], want()["nmi_balanced_slope"], "slope_bal"));
}

TEST_F(Fixture, SpecificAndSharedExperts) {
    json spec = json::array(), shared = json::array();
    for (const json& L : t()["specific_experts"]["layers"]) {
        for (const json& x : L["specific"])
            spec.push_back({{"layer", L["layer"]},
                            {"expert", x["expert"]},
                            {"language", x["language"]},
                            {"share", x["share"]}});
        for (const json& x : L["shared"])
            shared.push_back({{"layer", L["layer"]}, {"expert", x["expert"]}});
    }
    ASSERT_EQ(spec.size(), want()["specific"].size()) << spec.dump();
    for (size_t i = 0; i < spec.size(); ++i) {
        const json& w = want()["specific"][i];
        EXPECT_EQ(spec[i]["layer"], w["layer"]);
        EXPECT_EQ(spec[i]["expert"], w["expert"]);
        EXPECT_EQ(spec[i]["language"], w["language"]);
        EXPECT_TRUE(near(spec[i]["share"], w["share"], "specific.share"));
    }
    EXPECT_EQ(shared, want()["shared"]);
}

TEST_F(Fixture, ReuseShares) {
    const json& langs = t()["reuse"]["languages"];
    ASSERT_EQ(langs.size(), want()["reuse"].size());
    EXPECT_EQ(t()["reuse"]["skipped"].size(), 1u);  // eus: related fra has no tokens
    for (size_t i = 0; i < langs.size(); ++i) {
        const json& w = want()["reuse"][i];
        EXPECT_EQ(langs[i]["language"], w["language"]);
        EXPECT_EQ(langs[i]["related"], w["targets"][1]);
        for (size_t r = 0; r < langs[i]["layers"].size(); ++r) {
            const json& L = langs[i]["layers"][r];
            EXPECT_TRUE(near(L["self"]["value"], w["shares"][0][r], "reuse.self"));
            EXPECT_TRUE(near(L["related"]["value"], w["shares"][1][r], "reuse.related"));
            ASSERT_EQ(L["unrelated"].size() + 2, w["targets"].size());
            for (size_t u = 0; u < L["unrelated"].size(); ++u) {
                EXPECT_EQ(L["unrelated"][u]["language"], w["targets"][u + 2]);
                EXPECT_TRUE(near(L["unrelated"][u]["share"]["value"], w["shares"][u + 2][r],
                                 "reuse.unrelated"));
            }
            EXPECT_TRUE(near(L["margin"]["value"], w["margin"][r], "reuse.margin"));
        }
    }
}

TEST_F(Fixture, Coactivation) {
    const json& langs = t()["coactivation"]["languages"];
    for (size_t a = 0; a < langs.size(); ++a)
        for (size_t r = 0; r < langs[a]["layers"].size(); ++r) {
            const std::string p =
                "coactivation[" + std::to_string(a) + "][" + std::to_string(r) + "]";
            EXPECT_TRUE(near(langs[a]["layers"][r]["frequency"],
                             want()["coactivation_frequency"][a][r], p + ".frequency"));
            EXPECT_TRUE(near(langs[a]["layers"][r]["lift"], want()["coactivation_lift"][a][r],
                             p + ".lift"));
        }
}

TEST_F(Fixture, ScriptOverlapRestrictedCorrelation) {
    const json& s = t()["script"];
    EXPECT_TRUE(near(s["vocab_overlap"], want()["vocab_overlap"], "vocab_overlap"));
    EXPECT_EQ(s["shared_token_ids"], want()["shared_token_ids"]);
    ASSERT_TRUE(s["restricted_available"].get<bool>());
    for (size_t r = 0; r < s["layers"].size(); ++r) {
        EXPECT_TRUE(near(s["layers"][r]["restricted_bits"], want()["restricted_bits"][r],
                         "restricted_bits"));
        EXPECT_TRUE(near(s["layers"][r]["correlation_jsd"]["value"], want()["correlation_jsd"][r],
                         "correlation_jsd"));
    }
    EXPECT_TRUE(near(s["correlation_mean_jsd"]["value"], want()["correlation_mean_jsd"],
                     "correlation_mean_jsd"));
}

TEST_F(Fixture, TopTokens) {
    const json& layers = t()["vocabulary"]["layers"];
    for (size_t r = 0; r < layers.size(); ++r)
        for (size_t e = 0; e < layers[r]["experts"].size(); ++e) {
            json got = json::array();
            for (const json& x : layers[r]["experts"][e]["top_tokens"])
                got.push_back({x["token"], x["count"], x["share_of_token"]});
            EXPECT_TRUE(near(got, want()["top_tokens"][r][e], "top_tokens"));
        }
}

TEST_F(Fixture, DriftOverlapAndJsd) {
    ASSERT_EQ(got()["drift"].size(), 1u);
    const json& langs = got()["drift"][0]["languages"];
    for (size_t a = 0; a < langs.size(); ++a) {
        json ov = json::array(), js = json::array();
        for (const json& L : langs[a]["layers"]) {
            ov.push_back(L["overlap"]["value"]);
            js.push_back(L["jsd_bits"]["value"]);
        }
        EXPECT_TRUE(near(ov, want()["drift_overlap"][a], "drift.overlap"));
        EXPECT_TRUE(near(js, want()["drift_jsd_bits"][a], "drift.jsd"));
    }
}

TEST_F(Fixture, NegativeControlOneMovedSlotIsDetected) {
    // Same fixture with one routing slot moved: the comparison must fail.
    const OwnedTrace bad = load_trace(want(), false, /*tamper=*/true);
    AnalysisOptions o;
    o.bootstrap = 0;
    o.permutations = 0;
    o.drift = false;
    const auto v = bad.view();
    const json j = analyze({{"bad", &v}}, o);
    EXPECT_FALSE(near(j["traces"][0]["distributions"]["estimators"]["counts"],
                      want()["distributions"]["counts"], "tampered"));
    json jsd = json::array();
    for (const json& L : j["traces"][0]["jsd"]["layers"])
        jsd.push_back(L["by_estimator_bits"]["counts"]);
    EXPECT_FALSE(near(jsd, want()["jsd_bits"]["counts"], "tampered"));
    // And the natural-log JSD is not the bits JSD of the fixture.
    EXPECT_FALSE(near(values(t()["jsd"]["layers"][2]["nats"]), want()["jsd_bits"]["counts"][2],
                      "nats-vs-bits"));
}

}  // namespace
}  // namespace polymoe::analysis
