// polymoe: one binary, one subcommand per stage (DESIGN.md "CLI contract"). User errors
// (polymoe::Error) print "error: ..." and exit 1; usage errors (unknown flag, bad value) exit 2.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>

#include "core/error.h"

namespace polymoe::cli {
// Each cmd_<name>.cpp registers its subcommand and returns the function that runs it.
std::function<void()> register_init(CLI::App& app);
std::function<void()> register_forward(CLI::App& app);
std::function<void()> register_bench(CLI::App& app);
std::function<void()> register_train(CLI::App& app);
std::function<void()> register_tokenize(CLI::App& app);
std::function<void()> register_prepare(CLI::App& app);
std::function<void()> register_trace(CLI::App& app);
std::function<void()> register_demo(CLI::App& app);
std::function<void()> register_eval(CLI::App& app);
std::function<void()> register_ablate(CLI::App& app);
std::function<void()> register_analyze(CLI::App& app);
std::function<void()> register_report(CLI::App& app);
}  // namespace polymoe::cli

int main(int argc, char** argv) {
    using namespace polymoe::cli;
    CLI::App app{"polymoe: multilingual Mixture-of-Experts research toolkit (OLMoE)", "polymoe"};
    app.require_subcommand(1);
    app.allow_extras(false);
    std::vector<std::pair<CLI::App*, std::function<void()>>> commands;
    auto add = [&](std::function<void()> (*reg)(CLI::App&)) {
        size_t before = app.get_subcommands({}).size();
        auto run = reg(app);
        commands.emplace_back(app.get_subcommands({})[before], std::move(run));
    };
    add(register_init);
    add(register_forward);
    add(register_bench);
    add(register_train);
    add(register_tokenize);
    add(register_prepare);
    add(register_trace);
    add(register_eval);
    add(register_analyze);
    add(register_ablate);
    add(register_report);
    add(register_demo);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "error: [cli] %s\n", e.what());
        std::fprintf(stderr, "run with --help for usage\n");
        return 2;
    }
    try {
        for (auto& [sub, run] : commands)
            if (sub->parsed()) run();
    } catch (const polymoe::UsageError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const polymoe::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: [memory] out of memory\n");
        return 1;
    }
    return 0;
}
