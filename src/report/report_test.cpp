// Tests of the report renderer: SVG primitives (escaping, number formatting, viridis anchors),
// charts that put each value's colour and tooltip where it belongs, the byte-stable snapshot of
// the whole report for the committed JSON fixture (tests/fixtures/report, made by
// tools/make_report_fixtures.sh), well-formedness of the HTML and every SVG under a real XML
// parser (libxml2), findings that quote the inputs and change verdict when the inputs do, and
// errors that name the file and the field.
//
// To accept an intended change of the output: POLYMOE_UPDATE_SNAPSHOTS=1 report_test, then
// review `git diff tests/fixtures/report/expected`.
#include "report/report.h"

#include <gtest/gtest.h>
#include <libxml/parser.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "analysis/count_table.h"
#include "core/error.h"
#include "report/charts.h"
#include "report/svg.h"

namespace polymoe::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtures = fs::path(POLYMOE_SOURCE_DIR) / "tests/fixtures/report";

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// The fixture inputs, named by file name only so that the report (which quotes input paths)
// does not depend on where the checkout lives.
ReportInputs fixture_inputs() {
    ReportInputs in;
    in.analysis = load_input(kFixtures / "analysis.json", "polymoe.analysis");
    in.eval = load_input(kFixtures / "eval.json", "polymoe.eval");
    in.interventions = load_input(kFixtures / "interventions.json", "polymoe.interventions");
    in.analysis.path = "analysis.json";
    in.eval->path = "eval.json";
    in.interventions->path = "interventions.json";
    return in;
}

// Empty string if `text` is well-formed XML, else libxml2's message.
std::string xml_error(const std::string& text) {
    xmlDocPtr doc = xmlReadMemory(text.data(), static_cast<int>(text.size()), "input.xml", nullptr,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == nullptr) {
        const xmlError* e = xmlGetLastError();
        return e && e->message ? e->message : "unknown parse error";
    }
    xmlFreeDoc(doc);
    return {};
}

int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

TEST(Svg, EscapingFormattingAndColours) {
    EXPECT_EQ(xml_escape(R"(a<b & "c" 'd'>)"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
    EXPECT_EQ(coord(1.005), "1.00");  // 1.005 is 1.00499... in binary
    EXPECT_EQ(coord(-0.001), "0.00");
    EXPECT_EQ(coord(2.5), "2.50");
    // Viridis anchors (matplotlib's values at 0, 0.5, 1) and clamping.
    EXPECT_EQ(viridis(0), "#440154");
    EXPECT_EQ(viridis(0.5), "#21918c");
    EXPECT_EQ(viridis(1), "#fde725");
    EXPECT_EQ(viridis(-3), "#440154");
    EXPECT_EQ(viridis(7), "#fde725");
    EXPECT_EQ(viridis(kNoValue), "#d9d9d9");
    // Halfway between the 0.9 and 1.0 anchors, channel by channel.
    EXPECT_EQ(viridis(0.95), "#dde326");
    EXPECT_EQ(text_color_on("#440154"), "#fff");
    EXPECT_EQ(text_color_on("#fde725"), "#000");
    EXPECT_NE(category_color(0), category_color(1));
    EXPECT_EQ(category_color(8), category_color(0));
}

TEST(Charts, HeatmapCellsCarryTheirValueColourAndTooltip) {
    HeatmapSpec s;
    s.title = "t & <x>";
    s.row_labels = {"a", "b"};
    s.col_labels = {"c", "d"};
    s.vmin = 0;
    s.vmax = 1;
    HeatmapPanel p;
    p.values = {0.0, 1.0, 0.5, kNoValue};
    p.tooltips = {"v00", "v01", "v10", "v11"};
    const std::string svg = heatmap_figure(s, {p}).document();
    EXPECT_EQ(xml_error(svg), "");
    for (const char* cell :
         {R"(fill="#440154"><title>v00</title>)", R"(fill="#fde725"><title>v01</title>)",
          R"(fill="#21918c"><title>v10</title>)", R"(fill="#d9d9d9"><title>v11</title>)"})
        EXPECT_NE(svg.find(cell), std::string::npos) << cell;
    EXPECT_NE(svg.find("t &amp; &lt;x&gt;"), std::string::npos);
    // Values printed in the cells, with contrasting text.
    EXPECT_NE(svg.find(R"(fill="#fff" text-anchor="middle">0.00</text>)"), std::string::npos);
    EXPECT_NE(svg.find(R"(fill="#000" text-anchor="middle">1.00</text>)"), std::string::npos);
    // Negative control: on a 0..2 scale the value 1 is no longer the top colour.
    s.vmax = 2;
    const std::string other = heatmap_figure(s, {p}).document();
    EXPECT_EQ(other.find(R"(fill="#fde725"><title>v01</title>)"), std::string::npos);
    EXPECT_NE(other.find(R"(fill="#21918c"><title>v01</title>)"), std::string::npos);
}

TEST(Charts, LineChartMapsLargerValuesHigher) {
    LineChartSpec s;
    s.title = "curve";
    s.x = {0, 1, 2};
    Series a = line_series("a", "#000");
    a.y = {0.1, 0.3, 0.2};
    a.lo = {0.05, 0.25, 0.15};
    a.hi = {0.15, 0.35, 0.25};
    s.series = {a};
    const std::string svg = line_chart(s).document();
    EXPECT_EQ(xml_error(svg), "");
    // (No <regex>: GCC 12's trips -Wmaybe-uninitialized in the sanitizer build.)
    const std::string key = "<polyline points=\"";
    const size_t at = svg.find(key);
    ASSERT_NE(at, std::string::npos);
    std::string points =
        svg.substr(at + key.size(), svg.find('"', at + key.size()) - at - key.size());
    std::replace(points.begin(), points.end(), ',', ' ');
    double x[3], y[3];
    std::istringstream pts(points);
    for (int i = 0; i < 3; ++i)
        pts >> x[i] >> y[i];
    EXPECT_LT(x[0], x[1]);
    EXPECT_LT(x[1], x[2]);
    EXPECT_LT(y[1], y[2]);  // 0.3 is drawn above 0.2, which is above 0.1
    EXPECT_LT(y[2], y[0]);
    EXPECT_EQ(count(svg, "<polygon"), 1);  // the CI band
    EXPECT_EQ(count(svg, "<circle"), 3);   // one marker (with tooltip) per point
}

TEST(Report, SnapshotIsByteStable) {
    const RenderedReport r = render_report(fixture_inputs());
    EXPECT_EQ(render_report(fixture_inputs()).html, r.html);  // same input, same bytes
    const fs::path expected = kFixtures / "expected";
    if (std::getenv("POLYMOE_UPDATE_SNAPSHOTS")) {
        write_report(r, expected);
        fs::remove_all(expected / "figures");  // inline in report.html; checked below
        GTEST_SKIP() << "snapshots written to " << expected;
    }
    EXPECT_TRUE(r.html == slurp(expected / "report.html"))
        << "report.html differs from " << expected / "report.html"
        << "; if intended, rerun with POLYMOE_UPDATE_SNAPSHOTS=1 and review the diff";
    for (const NamedText& t : r.tables)
        EXPECT_TRUE(t.text == slurp(expected / "tables" / t.name)) << t.name;
    // Each standalone figure is exactly the inline one plus the XML declaration.
    for (const NamedText& f : r.figures) {
        const std::string decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        ASSERT_EQ(f.text.rfind(decl, 0), 0u) << f.name;
        EXPECT_NE(r.html.find(f.text.substr(decl.size())), std::string::npos) << f.name;
    }
}

TEST(Report, HtmlAndEverySvgAreWellFormedXml) {
    const RenderedReport r = render_report(fixture_inputs());
    EXPECT_EQ(xml_error(r.html), "");
    ASSERT_GE(r.figures.size(), 10u);
    for (const NamedText& f : r.figures) {
        EXPECT_EQ(xml_error(f.text), "") << f.name;
        EXPECT_NE(f.text.find(R"(xmlns="http://www.w3.org/2000/svg")"), std::string::npos);
    }
    // Negative control: the parser does reject a figure with a missing end tag.
    std::string broken = r.figures.front().text;
    broken.erase(broken.rfind("</svg>"));
    EXPECT_NE(xml_error(broken), "");
    // Self-contained: nothing is fetched (no scripts, no external references).
    EXPECT_EQ(r.html.find("<script"), std::string::npos);
    EXPECT_EQ(r.html.find("src="), std::string::npos);
    EXPECT_EQ(r.html.find("http://"), r.html.find("http://www.w3.org/2000/svg"));
    // Figure 1 comes first and has three panels of 5 x 5 cells with JSD tooltips.
    EXPECT_EQ(r.figures.front().name, "fig1_jsd_last_layer.svg");
    EXPECT_LT(r.html.find("fig1_jsd_last_layer"), r.html.find("fig2_jsd_all_layers"));
    EXPECT_EQ(count(r.figures.front().text, " bits (95% CI)"), 3 * 5 * 4);
    for (const char* label : {"base · layer 15", "stage1 · layer 15", "stage2 · layer 15"})
        EXPECT_NE(r.figures.front().text.find(label), std::string::npos) << label;
}

TEST(Report, FindingsQuoteTheInputsAndFollowThem) {
    ReportInputs in = fixture_inputs();
    json& last = in.analysis.doc["traces"][0]["jsd"]["layers"][2];
    last["mean_bits"] = {{"value", 0.123456}, {"lo", 0.111}, {"hi", 0.135}, {"n_boot", 50}};
    last["mean_split_half_bits"] = 0.01;
    last["mean_permutation"]["null_p95"] = 0.05;
    RenderedReport r = render_report(in);
    ASSERT_FALSE(r.findings.empty());
    EXPECT_EQ(r.findings[0],
              "base: mean pairwise routing JSD at layer 15 is 0.123 [0.111, 0.135] bits vs "
              "split-half floor 0.010 and permutation-null 95th percentile 0.050; clears both "
              "baselines.");
    // The same number against a floor inside its interval no longer clears it.
    last["mean_split_half_bits"] = 0.12;
    r = render_report(in);
    EXPECT_NE(r.findings[0].find("clears the permutation null but not the split-half floor"),
              std::string::npos)
        << r.findings[0];
    last["mean_permutation"]["null_p95"] = 0.2;
    r = render_report(in);
    EXPECT_NE(r.findings[0].find("does not clear its baselines"), std::string::npos);
    // The specialisation verdict follows the sign of the interval.
    json& trend = in.analysis.doc["traces"][0]["specialization"]["trend"]["last_minus_first"];
    trend = {{"value", 0.02}, {"lo", 0.01}, {"hi", 0.03}, {"n_boot", 50}};
    r = render_report(in);
    bool found = false;
    for (const std::string& f : r.findings)
        found = found || (f.rfind("base: language–expert NMI", 0) == 0 &&
                          f.find("later layers are more language-specific") != std::string::npos);
    EXPECT_TRUE(found);
    trend["lo"] = -0.01;
    r = render_report(in);
    found = false;
    for (const std::string& f : r.findings)
        found = found || (f.rfind("base: language–expert NMI", 0) == 0 &&
                          f.find("no clear trend (interval includes 0)") != std::string::npos);
    EXPECT_TRUE(found);
}

// Passes if f() throws polymoe::Error whose message contains every part.
template <typename F>
::testing::AssertionResult throws_with(F&& f, std::initializer_list<std::string> parts) {
    try {
        f();
    } catch (const Error& e) {
        for (const std::string& p : parts)
            if (std::string(e.what()).find(p) == std::string::npos)
                return ::testing::AssertionFailure() << "'" << e.what() << "' lacks '" << p << "'";
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no polymoe::Error thrown";
}

TEST(Report, ErrorsNameTheFileAndTheField) {
    ReportInputs in = fixture_inputs();
    in.analysis.doc["traces"][1]["jsd"]["layers"][2].erase("mean_bits");
    EXPECT_TRUE(
        throws_with([&] { render_report(in); },
                    {"analysis.json", "$.traces[1].jsd.layers[2].mean_bits", "expected a field"}));
    in = fixture_inputs();
    in.analysis.doc["traces"][0]["layers"] = "0,7,15";
    EXPECT_TRUE(throws_with([&] { render_report(in); },
                            {"$.traces[0].layers", "expected an array", "found string"}));
    in = fixture_inputs();
    in.eval->doc["models"][0]["languages"]["spa"]["bits_per_byte"]["value"] = "1.5";
    EXPECT_TRUE(throws_with(
        [&] { render_report(in); },
        {"eval.json", "$.models[0].languages.spa.bits_per_byte.value", "expected a number"}));
    EXPECT_TRUE(throws_with(
        [&] { load_input(kFixtures / "eval.json", "polymoe.analysis"); },
        {"eval.json", "$.kind", "expected \"polymoe.analysis\"", "found \"polymoe.eval\""}));
    const fs::path bad = fs::path(testing::TempDir()) / "report_bad.json";
    std::ofstream(bad) << "{\"kind\": ";
    EXPECT_TRUE(throws_with([&] { load_input(bad, "polymoe.analysis"); },
                            {"report_bad.json", "parse error"}));
}

TEST(Report, WritesHtmlFiguresAndTables) {
    const fs::path out = fs::path(testing::TempDir()) / "report_write";
    fs::remove_all(out);
    const RenderedReport r = render_report(fixture_inputs());
    EXPECT_EQ(write_report(r, out), out / "report.html");
    EXPECT_EQ(slurp(out / "report.html"), r.html);
    for (const NamedText& f : r.figures)
        EXPECT_EQ(slurp(out / "figures" / f.name), f.text);
    for (const NamedText& t : r.tables)
        EXPECT_EQ(slurp(out / "tables" / t.name), t.text);
    // CSV: a header and rows with the same number of fields.
    for (const NamedText& t : r.tables) {
        std::istringstream s(t.text);
        std::string line;
        std::getline(s, line);
        const int fields = count(line, ",");
        int rows = 0;
        while (std::getline(s, line)) {
            EXPECT_EQ(count(line, ","), fields) << t.name << ": " << line;
            ++rows;
        }
        EXPECT_GT(rows, 0) << t.name;
    }
}

TEST(Report, RendersACountTableAnalysisAndSaysWhatIsUnavailable) {
    // analyze --counts output (no documents: no intervals, floors or nulls) renders like any
    // other analysis, and the findings give the analysis's reason instead of a verdict.
    const auto table = analysis::read_count_table(
        (fs::path(POLYMOE_SOURCE_DIR) / "tests/fixtures/npz/counts_basic.npz").string(), {});
    ReportInputs in;
    in.analysis = {"counts.json", analysis::analyze_counts(table, analysis::AnalysisOptions{})};
    const RenderedReport r = render_report(in);
    EXPECT_EQ(xml_error(r.html), "");
    ASSERT_FALSE(r.figures.empty());
    EXPECT_EQ(r.figures.front().name, "fig1_jsd_last_layer.svg");
    ASSERT_GE(r.findings.size(), 2u);
    EXPECT_NE(r.findings[0].find("no baseline to compare it with (a count table has no documents"),
              std::string::npos)
        << r.findings[0];
    EXPECT_EQ(r.html.find("Stage 2 (low-resource)"), std::string::npos);  // no stages in a table
}

}  // namespace
}  // namespace polymoe::report
