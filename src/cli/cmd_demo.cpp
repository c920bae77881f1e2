// polymoe demo: the whole study on the embedded corpus, as a chain of ordinary subcommand runs
// with files between them (each step is this binary run again with the arguments it prints):
// prepare -> init (demo preset: 16 layers) -> train base (English) -> train stage 1 (five
// high-resource languages, base replay) -> train stage 2 (five related low-resource languages,
// replay of stages 1 and base) -> trace the three checkpoints on held-out text -> eval ->
// analyze (with the routing-performance correlation) -> ablate (the stage-2 model's
// language-specific experts) -> report (HTML). Steps whose outputs exist are skipped and an
// interrupted training resumes from its last step-N, so rerunning after a crash continues where it
// stopped. --quick shrinks every budget (the CI smoke test).
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "tokenizer/tokenizer.h"

namespace polymoe::cli {

namespace fs = std::filesystem;

namespace {

struct DemoOptions {
    std::string out = "demo_out", manifest;
    bool quick = false;
    int threads = 0;
    uint64_t seed = 1;
};

struct StepResult {
    std::string name;
    bool ran = false;
    double seconds = 0;
};

std::string self_exe() {
    std::error_code ec;
    fs::path p = fs::read_symlink("/proc/self/exe", ec);
    if (ec) fail("demo", "/proc/self/exe: cannot resolve the polymoe binary: {}", ec.message());
    return p.string();
}

// Runs `polymoe args...` as a child process; throws naming the step if it fails.
void run_step(const std::string& name, const std::vector<std::string>& args) {
    std::string line = "polymoe";
    for (const auto& a : args)
        line += " " + a;
    fmt::print(stderr, "\n== demo: {}\n   {}\n", name, line);
    const std::string exe = self_exe();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) fail("demo", "{}: cannot start a process", name);
    if (pid == 0) {
        ::execv(exe.c_str(), argv.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("demo", "step \"{}\" failed (exit status {}): {}", name,
             WIFEXITED(status) ? WEXITSTATUS(status) : -1, line);
}

// The latest OUT/step-N of an interrupted training, or "".
std::string latest_step(const fs::path& dir) {
    int64_t best = -1;
    std::string path;
    if (!fs::is_directory(dir)) return path;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("step-", 0) != 0 || n.find('.') != std::string::npos) continue;
        const int64_t s = std::stoll(n.substr(5));
        if (s > best && fs::exists(e.path() / "trainer_state.json"))
            best = s, path = e.path().string();
    }
    return path;
}

}  // namespace

std::function<void()> register_demo(CLI::App& app) {
    auto o = std::make_shared<DemoOptions>();
    CLI::App* c = app.add_subcommand(
        "demo",
        "run the whole study on the embedded corpus (prepare, train base/stage 1/stage 2, "
        "trace, analyze)");
    c->add_option("--out", o->out, "output directory")->capture_default_str();
    c->add_option("--manifest", o->manifest,
                  "corpus manifest (default: the embedded UDHR corpus, configs/corpus/udhr.yaml)");
    c->add_flag("--quick", o->quick, "small budgets (a smoke test, about a minute)");
    c->add_option("--seed", o->seed, "seed of init and data order")->capture_default_str();
    add_threads_option(c, &o->threads);
    return [o] {
        Timer total;
        const fs::path out = o->out;
        fs::create_directories(out);
        const std::string manifest =
            o->manifest.empty() ? (fs::path(tokenizer::data_dir()) / "../configs/corpus/udhr.yaml")
                                      .lexically_normal()
                                      .string()
                                : o->manifest;
        const std::string threads = std::to_string(o->threads);
        const std::string seed = std::to_string(o->seed);
        const std::string prepared = (out / "prepared").string();
        // Budgets: steps, batch, seq per stage.
        const int64_t steps[3] = {o->quick ? 16 : 300, o->quick ? 12 : 200, o->quick ? 12 : 200};
        const std::string batch = o->quick ? "4" : "8", seq = o->quick ? "64" : "128";
        const std::string max_trace_tokens = o->quick ? "64" : "0";
        std::vector<StepResult> results;
        auto step = [&](const std::string& name, bool done, const std::vector<std::string>& args) {
            StepResult r{name, !done, 0};
            Timer t;
            if (!done)
                run_step(name, args);
            else
                fmt::print(stderr, "\n== demo: {} (done, skipped)\n", name);
            r.seconds = t.seconds();
            results.push_back(r);
        };
        step("prepare", false,
             {"prepare", "--manifest", manifest, "--out", prepared, "--threads", threads});
        const std::string init = (out / "models/init").string();
        step("init", fs::exists(fs::path(init) / "config.json"),
             {"init", "--preset", "demo", "--seed", seed, "--out", init});
        struct Stage {
            const char *name, *stage, *replay_stages, *replay, *lr;
        };
        const Stage stages[3] = {{"base", "base", "", "0", "3e-3"},
                                 {"stage1", "1", "base", "0.1", "2e-3"},
                                 {"stage2", "2", "1,base", "0.2", "2e-3"}};
        std::string prev = init;
        std::vector<std::string> finals;
        for (int i = 0; i < 3; ++i) {
            const Stage& s = stages[i];
            const fs::path dir = out / "models" / s.name;
            const std::string final_dir = (dir / "final").string();
            std::vector<std::string> args = {"train",
                                             "--model",
                                             prev,
                                             "--data",
                                             prepared,
                                             "--stage",
                                             s.stage,
                                             "--out",
                                             dir.string(),
                                             "--steps",
                                             std::to_string(steps[i]),
                                             "--batch",
                                             batch,
                                             "--seq",
                                             seq,
                                             "--lr",
                                             s.lr,
                                             "--warmup",
                                             std::to_string(steps[i] / 10),
                                             "--save-every",
                                             std::to_string(std::max<int64_t>(1, steps[i] / 4)),
                                             "--seed",
                                             seed,
                                             "--threads",
                                             threads};
            if (std::string(s.replay_stages).size())
                for (const char* a : {"--replay-stages", s.replay_stages, "--replay", s.replay})
                    args.push_back(a);
            const bool done = fs::exists(fs::path(final_dir) / "config.json");
            const std::string resume = done ? "" : latest_step(dir);
            if (!resume.empty()) {
                args.push_back("--resume");
                args.push_back(resume);
            }
            step(std::string("train ") + s.name, done, args);
            finals.push_back(final_dir);
            prev = final_dir;
        }
        std::vector<std::string> traces;
        for (int i = 0; i < 3; ++i) {
            const std::string t =
                (out / "traces" / (std::string(stages[i].name) + ".trace")).string();
            step(std::string("trace ") + stages[i].name, fs::exists(t),
                 {"trace", "--model", finals[static_cast<size_t>(i)], "--data", prepared, "--label",
                  stages[i].name, "--max-tokens", max_trace_tokens, "--out", t, "--threads",
                  threads});
            traces.push_back(t);
        }
        const std::string eval_json = (out / "eval.json").string();
        step("eval", fs::exists(eval_json),
             {"eval", "--model", finals[0], "--model", finals[1], "--model", finals[2], "--labels",
              "base,stage1,stage2", "--data", prepared, "--max-tokens", max_trace_tokens,
              "--bootstrap", o->quick ? "100" : "1000", "--out", eval_json, "--threads", threads});
        const std::string stats = (fs::path(prepared) / "stats.json").string();
        const std::string analysis = (out / "analysis.json").string();
        step("analyze", fs::exists(analysis),
             {"analyze",
              "--trace",
              traces[0],
              "--trace",
              traces[1],
              "--trace",
              traces[2],
              "--stats",
              stats,
              "--eval",
              eval_json,
              "--bootstrap",
              o->quick ? "50" : "200",
              "--permutations",
              o->quick ? "50" : "200",
              "--seed",
              seed,
              "--out",
              analysis,
              "--threads",
              threads});
        // Ablations on the stage-2 model: each language's two most-used experts per layer (few
        // experts are exclusive to one of 11 languages when related languages share them; a
        // capped number of held-out tokens keeps the 1 + 3 x languages evaluations in budget).
        const std::string interventions = (out / "interventions.json").string();
        step("ablate", fs::exists(interventions),
             {"ablate",
              "--model",
              finals[2],
              "--data",
              prepared,
              "--analysis",
              analysis,
              "--label",
              "stage2",
              "--experts",
              "top",
              "--top-m",
              "2",
              "--max-tokens",
              o->quick ? "48" : "256",
              "--random-seeds",
              o->quick ? "1" : "2",
              "--bootstrap",
              o->quick ? "50" : "500",
              "--seed",
              seed,
              "--out",
              interventions,
              "--threads",
              threads});
        // The report only renders the JSON above (well under a second), so it always reruns.
        const fs::path report_dir = out / "report";
        step("report", false,
             {"report", "--analysis", analysis, "--eval", eval_json, "--interventions",
              interventions, "--title", "polymoe demo: routing of 11 languages across stages",
              "--out", report_dir.string()});
        fmt::print(stderr, "\n== demo: summary ({:.1f} s)\n{:<16} {:>8} {:>10}\n", total.seconds(),
                   "step", "status", "seconds");
        for (const auto& r : results)
            fmt::print(stderr, "{:<16} {:>8} {:>10.1f}\n", r.name, r.ran ? "ran" : "skipped",
                       r.seconds);
        fmt::print(stderr,
                   "outputs: {0}/prepared (stats.json), {0}/models/*/final, {0}/traces/*.trace, "
                   "{0}/analysis.json (+ analysis_csv/), {0}/eval.json, {0}/interventions.json\n",
                   o->out);
        fmt::print(stderr, "report: open {} in a browser (figures/ and tables/ beside it)\n",
                   fs::absolute(report_dir / "report.html").string());
    };
}

}  // namespace polymoe::cli
