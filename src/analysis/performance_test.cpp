// Tests of routing_performance on hand-built analysis and eval JSON with known answers: an exact
// linear relation gives Pearson -1 with a degenerate interval, a monotone non-linear one gives
// Spearman -1 but |Pearson| < 1, shuffling the losses across languages (negative control) breaks
// the relation, entropy is read per language, and mismatched inputs are reported as unavailable.
#include "analysis/performance.h"

#include <gtest/gtest.h>

#include <cmath>

namespace polymoe::analysis {
namespace {

using nlohmann::json;

const char* kCodes[] = {"a", "b", "c", "d", "e"};

// One checkpoint: language a has JSD d[a] + d[b] to language b (so its distinctiveness grows with
// d[a]) and entropy h[a], at a single recorded layer 7.
json trace(const std::string& label, const std::vector<double>& d, const std::vector<double>& h) {
    json langs = json::array(), bits = json::array(), ent = json::array();
    const size_t n = d.size();
    for (size_t a = 0; a < n; ++a) {
        langs.push_back({{"code", kCodes[a]}});
        json row = json::array();
        for (size_t b = 0; b < n; ++b)
            row.push_back({{"value", a == b ? 0.0 : d[a] + d[b]}});
        bits.push_back(row);
        ent.push_back(json::array({{{"value", h[a]}}}));
    }
    return {{"label", label},
            {"languages", langs},
            {"layers", {7}},
            {"jsd", {{"layers", json::array({{{"layer", 7}, {"bits", bits}}})}}},
            {"entropy", {{"values", ent}}}};
}

json model(const std::string& label, const std::vector<double>& bpb) {
    json langs = json::object();
    for (size_t a = 0; a < bpb.size(); ++a)
        langs[kCodes[a]] = {{"bits_per_byte", {{"value", bpb[a]}, {"lo", 0}, {"hi", 9}}}};
    return {{"label", label}, {"languages", langs}};
}

// Distinctiveness of language a: mean over b != a of d[a] + d[b].
std::vector<double> distinct(const std::vector<double>& d) {
    std::vector<double> out;
    double total = 0;
    for (double v : d)
        total += v;
    const double n = static_cast<double>(d.size());
    for (double v : d)
        out.push_back(((n - 1) * v + (total - v)) / (n - 1));
    return out;
}

AnalysisOptions opts() {
    AnalysisOptions o;
    o.bootstrap = 300;
    o.seed = 3;
    return o;
}

const json& stat(const json& r, const char* metric, const char* s) {
    return r["layers"][0][metric][s];
}

TEST(RoutingPerformance, ExactLinearAndMonotoneRelations) {
    const std::vector<double> d0 = {0.10, 0.20, 0.05, 0.30, 0.15},
                              d1 = {0.30, 0.27, 0.44, 0.33, 0.52};
    const std::vector<double> h = {3.0, 2.5, 3.2, 2.0, 2.8};
    std::vector<double> y0, y1;
    for (double x : distinct(d0))
        y0.push_back(5 - 4 * x);
    for (double x : distinct(d1))
        y1.push_back(5 - 4 * x);
    const json analysis = {{"traces", {trace("base", d0, h), trace("stage1", d1, h)}}};
    const json eval = {{"models", {model("stage1", y1), model("base", y0), model("other", y0)}}};
    const json r = routing_performance(analysis, eval, opts());
    ASSERT_TRUE(r["available"].get<bool>()) << r.dump();
    EXPECT_EQ(r["checkpoints"], json({"base", "stage1"}));
    EXPECT_EQ(r["points"], 10);
    EXPECT_EQ(r["layers"][0]["layer"], 7);
    for (const char* s :
         {"pearson", "spearman", "change_pearson", "change_spearman", "within_spearman"}) {
        EXPECT_NEAR(stat(r, "distinctiveness", s)["value"].get<double>(), -1.0, 1e-12) << s;
        EXPECT_NEAR(stat(r, "distinctiveness", s)["lo"].get<double>(), -1.0, 1e-12) << s;
        EXPECT_NEAR(stat(r, "distinctiveness", s)["hi"].get<double>(), -1.0, 1e-12) << s;
    }
    // Entropy is the same at both checkpoints while the loss changes: no change correlation.
    EXPECT_TRUE(stat(r, "entropy", "change_pearson")["value"].is_null());

    // Monotone but not linear: Spearman stays -1, Pearson does not.
    for (double& v : y0)
        v = std::exp(-12 * (5 - v) / 4);
    for (double& v : y1)
        v = std::exp(-12 * (5 - v) / 4);
    const json r2 = routing_performance(
        analysis, {{"models", {model("base", y0), model("stage1", y1)}}}, opts());
    EXPECT_NEAR(stat(r2, "distinctiveness", "spearman")["value"].get<double>(), -1.0, 1e-12);
    EXPECT_GT(stat(r2, "distinctiveness", "pearson")["value"].get<double>(), -0.99);

    // Negative control: the losses shuffled across languages no longer follow the routing.
    std::vector<double> s0 = {y0[3], y0[0], y0[4], y0[1], y0[2]};
    std::vector<double> s1 = {y1[2], y1[4], y1[0], y1[3], y1[1]};
    const json r3 = routing_performance(
        analysis, {{"models", {model("base", s0), model("stage1", s1)}}}, opts());
    EXPECT_GT(stat(r3, "distinctiveness", "spearman")["value"].get<double>(), -0.9);
    // Pooled over checkpoints a relation remains (both axes move with training); within each
    // checkpoint and in the changes it is gone.
    EXPECT_GT(stat(r3, "distinctiveness", "within_spearman")["value"].get<double>(), -0.5);
    EXPECT_GT(stat(r3, "distinctiveness", "change_spearman")["value"].get<double>(), -0.5);
}

TEST(RoutingPerformance, EntropyIsReadPerLanguage) {
    const std::vector<double> d = {0.1, 0.2, 0.3, 0.4, 0.5}, h = {1.0, 2.0, 3.0, 4.0, 5.0};
    const std::vector<double> y = {9.0, 7.0, 5.0, 3.0, 1.0};
    const json r = routing_performance({{"traces", {trace("m", d, h)}}},
                                       {{"models", {model("m", y)}}}, opts());
    EXPECT_NEAR(stat(r, "entropy", "pearson")["value"].get<double>(), -1.0, 1e-12);
    EXPECT_TRUE(stat(r, "entropy", "change_spearman")["value"].is_null());  // one checkpoint
}

TEST(RoutingPerformance, MismatchedInputsAreUnavailableWithAReason) {
    const std::vector<double> d = {0.1, 0.2, 0.3}, h = {1, 2, 3}, y = {1, 2, 3};
    const json a = {{"traces", {trace("base", d, h)}}};
    const json r = routing_performance(a, {{"models", {model("stage9", y)}}}, opts());
    EXPECT_FALSE(r["available"].get<bool>());
    EXPECT_NE(r["reason"].get<std::string>().find("analysis (base) and the eval (stage9)"),
              std::string::npos)
        << r["reason"];
    const json two = {{"traces", {trace("base", {0.1, 0.2}, {1, 2})}}};
    const json r2 = routing_performance(two, {{"models", {model("base", {1, 2})}}}, opts());
    EXPECT_FALSE(r2["available"].get<bool>());
    EXPECT_NE(r2["reason"].get<std::string>().find("at least 3"), std::string::npos);
}

}  // namespace
}  // namespace polymoe::analysis
