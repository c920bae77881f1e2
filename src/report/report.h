// polymoe report: renders the study's figures, tables and findings from the JSON files that
// analyze, eval and ablate write (it never recomputes a statistic, it only draws and quotes
// them). Output: a self-contained report.html (inline SVG and CSS, no JavaScript, no network),
// each figure as a standalone SVG under figures/, and the plotted numbers as CSV under tables/.
// Rendering is deterministic: the same JSON gives the same bytes (snapshot-tested), and the HTML
// is written as polyglot markup (every element closed) so an XML parser can check it.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace polymoe::report {

// One input file, parsed; `path` names it in errors and in the report's provenance table.
struct JsonInput {
    std::string path;
    nlohmann::json doc;
};

struct ReportInputs {
    JsonInput analysis;                      // kind polymoe.analysis (required)
    std::optional<JsonInput> eval;           // kind polymoe.eval
    std::optional<JsonInput> interventions;  // kind polymoe.interventions
    std::string title = "polymoe routing report";
};

struct NamedText {
    std::string name;  // file name relative to its folder, e.g. "fig1_jsd_last_layer.svg"
    std::string text;
};

struct RenderedReport {
    std::string html;
    std::vector<NamedText> figures;     // standalone SVG documents
    std::vector<NamedText> tables;      // CSV
    std::vector<std::string> findings;  // the summary sentences, in order
};

// Reads and parses a JSON file, checking its "kind" field; errors name the file.
JsonInput load_input(const std::filesystem::path& path, const std::string& expected_kind);

RenderedReport render_report(const ReportInputs& in);

// Writes report.html, figures/*.svg and tables/*.csv under out_dir (each file written to a
// temporary name and renamed). Returns the path of report.html.
std::filesystem::path write_report(const RenderedReport& r, const std::filesystem::path& out_dir);

}  // namespace polymoe::report
