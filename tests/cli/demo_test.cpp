// The end-to-end demo as a user runs it: `polymoe demo --quick` must finish, produce every
// output, skip finished steps when rerun, and resume an interrupted training from its last
// step-N checkpoint. Labelled "demo" and run by the non-sanitised CI preset only (it trains three
// models; under ASan it would dominate CI time without testing anything the unit tests don't).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct Result {
    int code = -1;
    std::string out;
};

Result run(const std::string& args) {
    Result r;
    const std::string cmd = std::string("POLYMOE_PROGRESS=0 ") + POLYMOE_BIN + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        r.out.append(buf, n);
    const int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

TEST(Demo, QuickRunsEndToEndSkipsDoneStepsAndResumes) {
    const fs::path out = fs::temp_directory_path() / ("polymoe_demo_" + std::to_string(::getpid()));
    fs::remove_all(out);
    Result r = run("demo --quick --out " + out.string());
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* f :
         {"prepared/stats.json", "models/base/final/config.json",
          "models/stage1/final/optimizer.safetensors", "models/stage2/final/model.safetensors",
          "traces/base.trace", "traces/stage1.trace", "traces/stage2.trace", "eval.json",
          "eval.csv", "analysis.json", "analysis_csv/jsd.csv", "interventions.json",
          "report/report.html", "report/figures/fig1_jsd_last_layer.svg",
          "report/tables/jsd_last_layer.csv", "report/tables/eval.csv"})
        EXPECT_TRUE(fs::exists(out / f)) << f;
    std::ifstream cfg(out / "models/base/final/config.json");
    std::string text((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("\"num_hidden_layers\": 16"), std::string::npos) << text;
    // The report's headline figure is layer 15 of all three checkpoints, and the demo says where
    // the report is.
    std::ifstream fig(out / "report/figures/fig1_jsd_last_layer.svg");
    const std::string svg((std::istreambuf_iterator<char>(fig)), std::istreambuf_iterator<char>());
    for (const char* panel : {"base · layer 15", "stage1 · layer 15", "stage2 · layer 15"})
        EXPECT_NE(svg.find(panel), std::string::npos) << panel;
    EXPECT_NE(r.out.find("report: open " + fs::absolute(out / "report/report.html").string()),
              std::string::npos)
        << r.out;
    // Rerun: everything is skipped.
    Result again = run("demo --quick --out " + out.string());
    ASSERT_EQ(again.code, 0) << again.out;
    EXPECT_EQ(again.out.find("polymoe train"), std::string::npos) << again.out;
    // Interrupted stage 2: its final checkpoint and traces are gone, step-9 remains.
    fs::remove_all(out / "models/stage2/final");
    fs::remove(out / "traces/stage2.trace");
    ASSERT_TRUE(fs::exists(out / "models/stage2/step-9/trainer_state.json"));
    Result resumed = run("demo --quick --out " + out.string());
    ASSERT_EQ(resumed.code, 0) << resumed.out;
    EXPECT_NE(resumed.out.find("--resume " + (out / "models/stage2/step-9").string()),
              std::string::npos)
        << resumed.out;
    EXPECT_NE(resumed.out.find("step 12/12"), std::string::npos) << resumed.out;
    EXPECT_EQ(resumed.out.find("step 9/12 "), std::string::npos) << resumed.out;  // not redone
    EXPECT_TRUE(fs::exists(out / "traces/stage2.trace"));
    fs::remove_all(out);
}

}  // namespace
