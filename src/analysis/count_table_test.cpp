// Count-table analysis tests: the count table of a trace (per language, layer and expert, the
// number of top-k slots) analysed by analyze_counts() agrees with analyze() of the trace itself
// on every count-based number (distributions, entropy, JSD bits/nats/normalised, NMI and trend,
// specific and shared experts, reuse with its random baseline, language rates), with a negative
// control (one slot moved) that must disagree; the statistics a count table cannot support are
// present in the schema, null, and marked unavailable with a reason; a numpy-written count table
// and the released real-routing files load.
#include "analysis/count_table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "analysis/synthetic.h"
#include "io/io_test_util.h"
#include "io/npz.h"

namespace polymoe::analysis {
namespace {

using io::testing_util::TempDir;
using io::testing_util::throws_error_with;
using nlohmann::json;

const std::string kFixtures = std::string(POLYMOE_SOURCE_DIR) + "/tests/fixtures/npz/";

// Largest |a - b| over the numbers of two JSON values (infinity for a structural difference).
double diff(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) return std::abs(a.get<double>() - b.get<double>());
    if (a.type() != b.type() || a.size() != b.size()) return INFINITY;
    double m = 0;
    if (a.is_object()) {
        for (auto it = a.begin(); it != a.end(); ++it)
            m = std::max(m, b.contains(it.key()) ? diff(*it, b[it.key()]) : INFINITY);
    } else if (a.is_array()) {
        for (size_t i = 0; i < a.size(); ++i)
            m = std::max(m, diff(a[i], b[i]));
    } else if (a != b) {
        m = INFINITY;
    }
    return m;
}

// Max difference over every count-based number of two trace sections.
double count_metrics_diff(const json& t, const json& c) {
    double m = 0;
    auto take = [&](const json& a, const json& b) { m = std::max(m, diff(a, b)); };
    take(t["distributions"]["estimators"]["counts"], c["distributions"]["estimators"]["counts"]);
    take(t["entropy"]["by_estimator"]["counts"], c["entropy"]["by_estimator"]["counts"]);
    for (size_t a = 0; a < t["entropy"]["values"].size(); ++a)
        for (size_t r = 0; r < t["layers"].size(); ++r)
            take(t["entropy"]["values"][a][r]["value"], c["entropy"]["values"][a][r]["value"]);
    for (size_t r = 0; r < t["layers"].size(); ++r) {
        const json &jt = t["jsd"]["layers"][r], &jc = c["jsd"]["layers"][r];
        take(jt["layer"], jc["layer"]);
        take(jt["by_estimator_bits"]["counts"], jc["by_estimator_bits"]["counts"]);
        for (const char* k : {"bits", "nats", "normalized"})
            for (size_t a = 0; a < jt[k].size(); ++a)
                for (size_t b = 0; b < jt[k].size(); ++b)
                    take(jt[k][a][b]["value"], jc[k][a][b]["value"]);
        const json &st = t["specialization"]["layers"][r], &sc = c["specialization"]["layers"][r];
        take(st["nmi"]["value"], sc["nmi"]["value"]);
        take(st["nmi_balanced"]["value"], sc["nmi_balanced"]["value"]);
        const json &et = t["specific_experts"]["layers"][r],
                   &ec = c["specific_experts"]["layers"][r];
        take(et["num_specific"]["value"], ec["num_specific"]["value"]);
        take(et["num_shared"]["value"], ec["num_shared"]["value"]);
        take(et["specific_per_language"], ec["specific_per_language"]);
        if (et["specific"].size() != ec["specific"].size()) return INFINITY;
        for (size_t i = 0; i < et["specific"].size(); ++i)
            for (const char* k : {"expert", "language", "share"})
                take(et["specific"][i][k], ec["specific"][i][k]);
        if (et["shared"].size() != ec["shared"].size()) return INFINITY;
        for (size_t i = 0; i < et["shared"].size(); ++i)
            for (const char* k : {"expert", "min_probability"})
                take(et["shared"][i][k], ec["shared"][i][k]);
        for (size_t e = 0; e < t["vocabulary"]["layers"][r]["experts"].size(); ++e)
            for (const char* k : {"language_rate", "language_share"})
                take(t["vocabulary"]["layers"][r]["experts"][e][k],
                     c["vocabulary"]["layers"][r]["experts"][e][k]);
    }
    for (const char* k :
         {"slope", "last_minus_first", "slope_balanced", "last_minus_first_balanced"})
        take(t["specialization"]["trend"][k]["value"], c["specialization"]["trend"][k]["value"]);
    const json &rt = t["reuse"], &rc = c["reuse"];
    take(rt["high_resource"], rc["high_resource"]);
    if (rt["languages"].size() != rc["languages"].size()) return INFINITY;
    for (size_t i = 0; i < rt["languages"].size(); ++i)
        for (size_t r = 0; r < t["layers"].size(); ++r) {
            const json &lt = rt["languages"][i]["layers"][r], &lc = rc["languages"][i]["layers"][r];
            for (const char* k : {"self", "related", "margin"})
                take(lt[k]["value"], lc[k]["value"]);
            for (size_t u = 0; u < lt["unrelated"].size(); ++u)
                take(lt["unrelated"][u]["share"]["value"], lc["unrelated"][u]["share"]["value"]);
            take(lt["random"], lc["random"]);
        }
    for (size_t a = 0; a < t["languages"].size(); ++a) {
        take(t["languages"][a]["code"], c["languages"][a]["code"]);
        take(t["languages"][a]["tokens"], c["languages"][a]["tokens"]);
    }
    return m;
}

SyntheticSpec spec() {
    SyntheticSpec s;
    s.E = 16;
    s.K = 4;
    s.R = 3;
    s.layers = {0, 7, 15};
    s.languages = {{"spa", "Spanish", "Latn", "Romance", "1", ""},
                   {"glg", "Galician", "Latn", "Romance", "2", "spa"},
                   {"rus", "Russian", "Cyrl", "Slavic", "1", ""},
                   {"bel", "Belarusian", "Cyrl", "Slavic", "2", "rus"}};
    s.nL = 4;
    s.docs_per_lang = 10;
    s.tokens_per_doc = 60;
    s.separation = 1.0;
    return s;
}

// counts [nL][R][E] of a view (slots per language, layer, expert), in header language order.
std::vector<double> slot_counts(const trace::TraceView& v) {
    const int R = v.header.num_layers(), K = v.header.top_k, E = v.header.num_experts;
    std::vector<double> c(v.header.languages.size() * static_cast<size_t>(R) * E, 0.0);
    for (const auto& ch : v.chunks)
        for (int r = 0; r < R; ++r)
            for (int64_t i = 0; i < ch.n; ++i)
                for (int k = 0; k < K; ++k)
                    c[(static_cast<size_t>(ch.lang[i]) * R + r) * E + ch.experts_at(r, i, K)[k]] +=
                        1;
    return c;
}

AnalysisOptions options() {
    AnalysisOptions o;
    o.bootstrap = 20;
    o.permutations = 50;
    o.split_half_repeats = 3;
    return o;
}

// Writes a count table in the released files' layout (counts_top<K>, counts_names, ...).
void write_counts(const std::string& path,
                  const trace::TraceHeader& h,
                  const std::vector<double>& counts,
                  bool with_related = true) {
    io::NpzWriter w(path, true);
    std::vector<std::string> names;
    for (const auto& l : h.languages)
        names.push_back(l.code);
    const io::UnicodeArray u = io::make_unicode_array(names);
    w.add("counts_names", u.descr, {static_cast<int64_t>(names.size())}, u.data.data());
    if (with_related) {
        std::vector<std::string> rel;
        for (const auto& l : h.languages)
            rel.push_back(l.related);
        const io::UnicodeArray ur = io::make_unicode_array(rel);
        w.add("related", ur.descr, {static_cast<int64_t>(rel.size())}, ur.data.data());
    }
    w.add("counts_top" + std::to_string(h.top_k), "<f8",
          {static_cast<int64_t>(names.size()), h.num_layers(), h.num_experts}, counts.data());
    std::vector<int64_t> layers(h.layers.begin(), h.layers.end());
    w.add("counts_layers", "<i8", {h.num_layers()}, layers.data());
    const int64_t unrelated[2] = {1, 2};
    w.add("position", "<i8", {2}, unrelated);
    w.finish();
}

TEST(CountTable, AgreesWithTraceAnalysisOnEveryCountMetric) {
    TempDir dir;
    const OwnedTrace t = make_synthetic_trace(spec());
    const trace::TraceView v = t.view();
    const json jt = analyze({{"", &v}}, options())["traces"][0];
    write_counts(dir.path("c.npz"), v.header, slot_counts(v));
    CountTableKeys keys;
    keys.counts = "counts_top4";
    keys.names = "counts_names";
    keys.layers = "counts_layers";
    const CountTable table = read_count_table(dir.path("c.npz"), keys);
    EXPECT_EQ(table.K, 4);  // from the key's "top4" suffix
    EXPECT_EQ(table.related[1], "spa");
    const json jc = analyze_counts(table, options())["traces"][0];
    const double d = count_metrics_diff(jt, jc);
    EXPECT_LT(d, 1e-12);
    EXPECT_EQ(jc["reuse"]["languages"].size(), 2u);
    std::printf("count table vs trace: max |diff| over count metrics = %.3g\n", d);

    // Without the `related` key there are no reuse rows: the comparison must notice.
    write_counts(dir.path("n.npz"), v.header, slot_counts(v), false);
    const json jn = analyze_counts(read_count_table(dir.path("n.npz"), keys), options());
    EXPECT_EQ(count_metrics_diff(jt, jn["traces"][0]), INFINITY);

    // Negative control: one slot of language 0, layer 1 moved from its top expert to another.
    std::vector<double> wrong = slot_counts(v);
    const size_t row = (0 * 3 + 1) * 16;
    const size_t top =
        static_cast<size_t>(std::max_element(wrong.begin() + static_cast<ptrdiff_t>(row),
                                             wrong.begin() + static_cast<ptrdiff_t>(row + 16)) -
                            wrong.begin());
    wrong[top] -= 1;
    wrong[row + (top - row + 1) % 16] += 1;
    write_counts(dir.path("w.npz"), v.header, wrong);
    const json jw = analyze_counts(read_count_table(dir.path("w.npz"), keys), options());
    const double dn = count_metrics_diff(jt, jw["traces"][0]);
    EXPECT_GT(dn, 1e-6);
    std::printf("negative control (one slot moved): max |diff| = %.3g\n", dn);
}

TEST(CountTable, UnavailableStatisticsKeepTheSchemaAndSayWhy) {
    const OwnedTrace t = make_synthetic_trace(spec());
    const trace::TraceView v = t.view();
    CountTable table;
    table.path = "mem";
    table.label = "x";
    for (const auto& l : v.header.languages)
        table.names.push_back(l.code);
    table.layers = v.header.layers;
    table.E = 16;
    table.K = 4;
    table.counts = slot_counts(v);
    table.related = {"", "spa", "", "rus"};
    const json j = analyze_counts(table, options());
    const json& s = j["traces"][0];
    const json jt = analyze({{"", &v}}, options())["traces"][0];
    // Same keys as a trace section (nothing deleted), plus nothing new but `source`.
    for (auto it = jt.begin(); it != jt.end(); ++it)
        EXPECT_TRUE(s.contains(it.key())) << it.key();
    EXPECT_EQ(s["source"]["kind"], "counts");
    EXPECT_EQ(jt["source"]["kind"], "trace");
    for (const char* k : {"bootstrap_ci", "permutation_null", "split_half_jsd", "paired_jsd",
                          "coactivation", "restricted_jsd", "vocab_overlap", "top_tokens"}) {
        EXPECT_EQ(s["availability"][k]["available"], false) << k;
        EXPECT_TRUE(s["availability"][k]["reason"].is_string()) << k;
        EXPECT_EQ(jt["availability"][k]["available"], true) << k;
    }
    EXPECT_EQ(s["availability"]["reuse_random"]["available"], true);
    const json& cell = s["jsd"]["layers"][1]["bits"][0][1];
    EXPECT_TRUE(cell["value"].is_number());
    EXPECT_TRUE(cell["lo"].is_null() && cell["hi"].is_null());
    EXPECT_EQ(cell["n_boot"], 0);
    const json& perm = s["jsd"]["layers"][1]["permutation"][0][1];
    EXPECT_TRUE(perm["p_value"].is_null());
    EXPECT_EQ(perm["available"], false);
    EXPECT_TRUE(perm["reason"].is_string());
    EXPECT_EQ(s["paired_jsd"]["available"], false);
    EXPECT_EQ(s["coactivation"]["available"], false);
    EXPECT_TRUE(s["coactivation"]["reason"].is_string());
    EXPECT_TRUE(s["jsd"]["layers"][0]["split_half_bits"][0].is_null());
    EXPECT_TRUE(s["sample"]["documents"].is_null());
    EXPECT_TRUE(s["distributions"]["estimators"]["weight"][0][0][0].is_null());
    EXPECT_EQ(s["layers"], json({0, 7, 15}));
    // The CSV writer accepts the count-table JSON.
    TempDir dir;
    EXPECT_FALSE(write_csv_tables(j, dir.path("csv")).empty());
}

TEST(CountTable, NumpyCountTableMatchesItsTable) {
    // counts_basic.npz holds the slot counts of table_*.npz (tools/make_npz_fixtures.py).
    const CountTable t = read_count_table(kFixtures + "counts_basic.npz", {});
    EXPECT_EQ(t.names, (std::vector<std::string>{"spa", "glg"}));
    EXPECT_EQ(t.layers, (std::vector<int>{3, 7}));
    EXPECT_EQ(t.K, 2);
    EXPECT_EQ(t.E, 5);
    EXPECT_TRUE(t.integral);
    const json j = analyze_counts(t, options());
    EXPECT_EQ(j["traces"][0]["languages"][0]["tokens"], 6.0);  // 6 spa tokens, 6 glg
    EXPECT_EQ(j["traces"][0]["languages"][1]["tokens"], 6.0);
    CountTableKeys k;
    k.counts = "missing";
    const std::string path = kFixtures + "counts_basic.npz";
    EXPECT_TRUE(throws_error_with([&] { read_count_table(path, k); },
                                  {path, "'missing'", "--counts-key", "other_table"}));
    k.counts = "other_table";  // [3, 3, 3] int32 but names has 2 entries
    EXPECT_TRUE(throws_error_with([&] { read_count_table(path, k); }, {path, "names", "3"}));
    EXPECT_TRUE(throws_error_with(
        [&] { read_count_table(kFixtures + "table_int64_stored.npz", {}); }, {"'counts'"}));
}

TEST(CountTable, RealRoutingFilesLoad) {
    const std::string olmoe = "/work/shared/real-routing/olmoe_domains_routing.npz";
    if (!std::filesystem::exists(olmoe)) GTEST_SKIP() << olmoe << " not on this machine";
    CountTableKeys k;
    k.counts = "counts_top8";
    k.names = "counts_names";
    k.layers = "counts_layers";
    const CountTable t = read_count_table(olmoe, k);
    EXPECT_EQ(t.names.size(), 5u);
    EXPECT_EQ(t.layers, (std::vector<int>{0, 7, 15}));
    EXPECT_EQ(t.E, 64);
    EXPECT_EQ(t.K, 8);
    const json s = analyze_counts(t, options())["traces"][0];
    for (const json& l : s["languages"])
        EXPECT_EQ(l["tokens"], 208896.0) << l["code"];  // the README's tokens per domain
    // Later layers more domain-specific (OLMoE paper): NMI rises from layer 0 to 15.
    EXPECT_GT(s["specialization"]["trend"]["last_minus_first"]["value"].get<double>(), 0.05);
}

}  // namespace
}  // namespace polymoe::analysis
