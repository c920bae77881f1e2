// Non-finite values during `polymoe train` (issue 12): the run must stop with a message that names
// the offending tensor by its HF name (the first non-finite weight when the loss is NaN/Inf, the
// first non-finite gradient when the gradient norm is), and keep the last good checkpoint.
//
// Two sources of non-finite values: a copy of the micro checkpoint with one weight set to +Inf
// (the loss becomes NaN), and the "grad" fault-injection hook (core/fault.h), which writes a NaN
// into the middle trainable parameter's gradient at a chosen step while the loss stays finite.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/params.h"
#include "run_polymoe.h"

namespace polymoe::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kFixture = fs::path(POLYMOE_SOURCE_DIR) / "tests" / "fixtures" / "micro";

// Runs polymoe with `args` and POLYMOE_FAULT_INJECT=`fault` (unset if empty).
Outcome run(const std::vector<std::string>& args, const std::string& fault, const fs::path& log) {
    return run_polymoe(args, log, fault);
}

std::vector<std::string> train_args(const fs::path& model, const fs::path& out) {
    return {"train", "--model",    model.string(), "--tokens",  (kFixture / "tokens.npy").string(),
            "--out", out.string(), "--steps",      "6",         "--save-every",
            "2",     "--lr",       "1e-2",         "--threads", "2"};
}

class NonFinite : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("polymoe_nonfinite_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

// Overwrites element `index` of F32 tensor `name` in `file` with `value`.
void poke(const fs::path& file, const std::string& name, int64_t index, float value) {
    int64_t pos = 0;
    {
        const io::SafetensorsFile f = io::SafetensorsFile::open(file.string());
        const io::TensorInfo* t = f.find(name);
        ASSERT_NE(t, nullptr) << name;
        ASSERT_EQ(t->dtype, DType::F32);
        std::ifstream in(file, std::ios::binary);
        uint64_t header = 0;
        in.read(reinterpret_cast<char*>(&header), 8);
        pos = 8 + static_cast<int64_t>(header) + t->begin + 4 * index;
    }
    std::fstream io(file, std::ios::binary | std::ios::in | std::ios::out);
    io.seekp(pos);
    io.write(reinterpret_cast<const char*>(&value), 4);
    ASSERT_TRUE(io.good());
}

TEST_F(NonFinite, InfWeightIsNamedWhenTheLossIsNotFinite) {
    const fs::path model = dir_ / "model";
    fs::copy(kFixture, model);
    const std::string bad = "model.layers.1.self_attn.o_proj.weight";
    poke(model / "model.safetensors", bad, 5, std::numeric_limits<float>::infinity());
    const Outcome o = run(train_args(model, dir_ / "out"), "", dir_ / "inf.log");
    EXPECT_EQ(o.code, 1) << o.out;
    // NaN prints as "nan" or "-nan" depending on its sign bit.
    EXPECT_NE(o.out.find("step 1: the loss is "), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("non-finite terms: ce = "), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("first non-finite weight: " + bad + "[5] = inf"), std::string::npos)
        << o.out;
    EXPECT_FALSE(fs::exists(dir_ / "out" / "final"));
}

TEST_F(NonFinite, NanGradientIsNamedAndTheLastCheckpointKept) {
    const model::OlmoeWeights w = model::load_checkpoint(kFixture.string());
    const auto& params = w.table.params();
    const std::string middle = params[params.size() / 2].name;  // where the hook writes its NaN
    const Outcome o = run(train_args(kFixture, dir_ / "out"), "grad:3", dir_ / "nan.log");
    EXPECT_EQ(o.code, 1) << o.out;
    EXPECT_NE(o.out.find("step 3: the gradient norm is nan"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("first non-finite gradient: " + middle + "[0] = nan"), std::string::npos)
        << o.out;
    // step-2 was written before the failure and is complete; nothing after it was.
    EXPECT_NO_THROW(model::load_checkpoint((dir_ / "out" / "step-2").string()));
    EXPECT_NO_THROW(
        io::SafetensorsFile::open((dir_ / "out" / "step-2" / "optimizer.safetensors").string()));
    EXPECT_FALSE(fs::exists(dir_ / "out" / "step-4"));
    EXPECT_FALSE(fs::exists(dir_ / "out" / "final"));
    // Negative control: the hook at a step beyond the run changes nothing.
    const Outcome ok = run(train_args(kFixture, dir_ / "ok"), "grad:7", dir_ / "ok.log");
    EXPECT_EQ(ok.code, 0) << ok.out;
}

}  // namespace
}  // namespace polymoe::testing
