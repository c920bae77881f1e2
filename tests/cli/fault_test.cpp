// Crash safety of `polymoe train` checkpoints under kill -9. POLYMOE_FAULT_INJECT=checkpoint:k
// (core/fault.h) makes the binary SIGKILL itself at the k-th point of checkpoint writing: after
// the temporary directory, each file, the fsyncs, the rename, and the pruning of an old
// checkpoint. For every k until the run survives, the test kills a run there and checks that
// (1) every directory named step-N or final is a complete checkpoint (weights, optimizer state,
// trainer state), and (2) resuming from the newest step-N (or from scratch if none was written)
// ends with final weights and AdamW moments byte-identical to an uninterrupted run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/params.h"
#include "run_polymoe.h"

namespace polymoe::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kFixture = fs::path(POLYMOE_SOURCE_DIR) / "tests" / "fixtures" / "micro";

// Runs polymoe with `args`, and POLYMOE_FAULT_INJECT=`fault` unless empty; output to `log`.
Outcome run(const std::vector<std::string>& args, const std::string& fault, const fs::path& log) {
    return run_polymoe(args, log, fault);
}

std::string bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// A checkpoint written by train, complete: loads, optimizer state opens, trainer state parses.
void expect_complete(const fs::path& dir) {
    SCOPED_TRACE(dir.string());
    EXPECT_NO_THROW(model::load_checkpoint(dir.string()));
    EXPECT_NO_THROW(io::SafetensorsFile::open((dir / "optimizer.safetensors").string()));
    std::ifstream st(dir / "trainer_state.json");
    EXPECT_NO_THROW((void)nlohmann::json::parse(st).at("step"));
}

TEST(FaultInjection, KillDuringCheckpointWritingKeepsAResumableCheckpoint) {
    const fs::path dir =
        fs::temp_directory_path() / ("polymoe_fault_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto args = [&](const fs::path& out) {
        return std::vector<std::string>{"train",
                                        "--model",
                                        kFixture.string(),
                                        "--tokens",
                                        (kFixture / "tokens.npy").string(),
                                        "--out",
                                        out.string(),
                                        "--steps",
                                        "6",
                                        "--save-every",
                                        "2",
                                        "--keep",
                                        "1",
                                        "--lr",
                                        "1e-2",
                                        "--threads",
                                        "2"};
    };
    const Outcome ref = run(args(dir / "ref"), "", dir / "ref.log");
    ASSERT_EQ(ref.code, 0) << ref.out;
    const std::string ref_model = bytes(dir / "ref" / "final" / "model.safetensors");
    const std::string ref_opt = bytes(dir / "ref" / "final" / "optimizer.safetensors");
    ASSERT_FALSE(ref_model.empty());
    int kills = 0, resumed = 0;
    for (int k = 1; k <= 100; ++k) {
        SCOPED_TRACE("checkpoint:" + std::to_string(k));
        const fs::path out = dir / ("run-" + std::to_string(k));
        const Outcome o = run(args(out), "checkpoint:" + std::to_string(k), dir / "kill.log");
        if (!o.killed) {
            // k is past the last fault point: the run completed normally.
            ASSERT_EQ(o.code, 0) << o.out;
            EXPECT_EQ(bytes(out / "final" / "model.safetensors"), ref_model);
            break;
        }
        ++kills;
        ASSERT_NE(o.out.find("fault injection: SIGKILL"), std::string::npos) << o.out;
        // Every directory under a checkpoint name is complete; find the newest step-N.
        int64_t newest = -1;
        bool has_final = false;
        for (const auto& e : fs::directory_iterator(out)) {
            const std::string n = e.path().filename().string();
            if (n == "final") {
                has_final = true;
                expect_complete(e.path());
            } else if (n.rfind("step-", 0) == 0 && n.find('.') == std::string::npos) {
                expect_complete(e.path());
                newest = std::max<int64_t>(newest, std::stoll(n.substr(5)));
            }
        }
        if (!has_final) {
            std::vector<std::string> a = args(out);
            if (newest > 0) {
                a.push_back("--resume");
                a.push_back((out / ("step-" + std::to_string(newest))).string());
                ++resumed;
            }
            const Outcome r = run(a, "", dir / "resume.log");
            ASSERT_EQ(r.code, 0) << r.out;
        }
        EXPECT_EQ(bytes(out / "final" / "model.safetensors"), ref_model);
        EXPECT_EQ(bytes(out / "final" / "optimizer.safetensors"), ref_opt);
        fs::remove_all(out);
    }
    std::printf("[ fault ] %d kills inside checkpoint writing, %d resumed from a step-N\n", kills,
                resumed);
    EXPECT_GE(kills, 20);  // 3 checkpoints x 8 points + 1 pruning
    EXPECT_GE(resumed, 10);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace polymoe::testing
