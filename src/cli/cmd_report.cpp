// polymoe report: analysis.json (+ eval.json, interventions.json) -> report.html with inline SVG
// figures, figures/*.svg and tables/*.csv (report::render_report; it only renders, never
// recomputes statistics).
#include <filesystem>

#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "report/report.h"

namespace polymoe::cli {

namespace {

struct ReportCliOptions {
    std::string analysis, eval, interventions, out, title = "polymoe routing report";
};

}  // namespace

std::function<void()> register_report(CLI::App& app) {
    auto o = std::make_shared<ReportCliOptions>();
    CLI::App* c = app.add_subcommand(
        "report", "render the study's HTML report (figures, tables, findings) from JSON results");
    c->add_option("--analysis", o->analysis, "analysis.json from `polymoe analyze`")
        ->required()
        ->check(CLI::ExistingFile);
    c->add_option("--eval", o->eval, "eval.json from `polymoe eval` (optional)")
        ->check(CLI::ExistingFile);
    c->add_option("--interventions", o->interventions,
                  "interventions.json from `polymoe ablate` (optional)")
        ->check(CLI::ExistingFile);
    c->add_option("--title", o->title, "report title")->capture_default_str();
    c->add_option("--out", o->out, "output directory (report.html, figures/, tables/)")->required();
    return [o] {
        Timer timer;
        report::ReportInputs in;
        in.title = o->title;
        in.analysis = report::load_input(o->analysis, "polymoe.analysis");
        if (!o->eval.empty()) in.eval = report::load_input(o->eval, "polymoe.eval");
        if (!o->interventions.empty())
            in.interventions = report::load_input(o->interventions, "polymoe.interventions");
        const report::RenderedReport r = report::render_report(in);
        const auto html = report::write_report(r, o->out);
        fmt::print(stderr, "report: {} figures, {} tables, {} findings in {:.2f} s -> {}\n",
                   r.figures.size(), r.tables.size(), r.findings.size(), timer.seconds(),
                   html.string());
        for (const std::string& f : r.findings)
            fmt::print("  - {}\n", f);
        write_run_json((std::filesystem::path(o->out) / "report.run.json").string(), "report",
                       {{"analysis", o->analysis},
                        {"eval", o->eval},
                        {"interventions", o->interventions},
                        {"title", o->title}},
                       {{"figures", r.figures.size()}, {"seconds", timer.seconds()}});
    };
}

}  // namespace polymoe::cli
