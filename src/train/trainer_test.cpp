// Trainer tests: training over prepared shards through LoaderSource, and exact resume — a run
// stopped at step-3 and resumed reaches bit-identical weights and optimizer moments to one that
// never stopped (same thread count), with the loader picking up at the same batch.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/shard.h"
#include "io/io_test_util.h"
#include "io/safetensors.h"
#include "model/params.h"
#include "train/data_source.h"

namespace polymoe::train {
namespace {

using io::testing_util::TempDir;
using io::testing_util::throws_error_with;

// A prepared directory by hand: two stage-1 languages and one base language with ids < 256.
void write_prepared(const std::string& dir) {
    std::filesystem::create_directories(dir);
    nlohmann::json langs = nlohmann::json::object();
    const char* codes[] = {"aaa", "bbb", "eng"};
    const char* stages[] = {"1", "1", "base"};
    for (int l = 0; l < 3; ++l) {
        data::ShardMeta meta{{codes[l], "", "Latn", "", stages[l], ""}, "train", "t.json", 1, 256};
        data::ShardWriter w(dir + "/" + data::shard_file_name(codes[l], "train", 0), meta);
        for (int d = 0; d < 20; ++d) {
            std::vector<int32_t> ids;
            for (int i = 0; i < 5 + d % 9; ++i)
                ids.push_back((l * 80 + d * 7 + i * 3) % 250);
            w.add_document(ids, -1);
        }
        w.finish();
        langs[codes[l]] = {{"info", {{"stage", stages[l]}}}};
    }
    std::ofstream(dir + "/stats.json")
        << nlohmann::json{{"eos_id", 255}, {"languages", langs}}.dump();
}

TrainConfig config(const std::string& out) {
    TrainConfig c;
    c.adam.lr = 1e-2;
    c.steps = 6;
    c.warmup = 2;
    c.save_every = 3;
    c.out = out;
    return c;
}

model::OlmoeWeights fresh() {
    model::OlmoeWeights w(model::preset("micro"));
    model::init_weights(w, 3);
    return w;
}

TEST(Trainer, TrainsFromShardsAndLogsTokensPerLanguage) {
    TempDir t;
    write_prepared(t.path("data"));
    DataSpec spec{t.path("data"), {"1"}, {"base"}, {}, 9};
    spec.mix.policy = data::MixPolicy::kUniform;
    spec.mix.replay = 0.25;
    LoaderSource src(spec, 4, 16, 256);
    EXPECT_EQ(src.loader().languages().size(), 3u);
    model::OlmoeWeights w = fresh();
    TrainConfig c = config("");
    c.steps = 12;
    c.save_every = 0;
    auto logs = train(w, src, c);
    ASSERT_EQ(logs.size(), 12u);
    int64_t eng = 0;
    for (const auto& l : logs) {
        int64_t sum = 0;
        for (const auto& [code, n] : l.tokens_by_language) {
            sum += n;
            if (code == "eng") eng += n;
        }
        EXPECT_EQ(sum, 4 * 16);
        EXPECT_NE(l.json().find("tokens_by_language"), std::string::npos);
        EXPECT_NE(l.json().find("ce_by_language"), std::string::npos);
        ASSERT_EQ(l.ce_by_language.size(), l.tokens_by_language.size());
        for (const auto& [code, ce] : l.ce_by_language)
            EXPECT_GT(ce, 0.0) << code;
    }
    EXPECT_GT(eng, 0);  // replay delivered something
    EXPECT_LT(logs.back().ce, logs.front().ce);
    DataSpec none = spec;
    none.stages = {"7"};
    EXPECT_TRUE(
        throws_error_with([&] { LoaderSource(none, 4, 16, 256); }, {"stage(s) 7", "aaa(1)"}));
    EXPECT_TRUE(throws_error_with([&] { LoaderSource(spec, 4, 16, 200); }, {"eos_id", "200"}));
}

TEST(Trainer, ResumeIsBitExact) {
    TempDir t;
    write_prepared(t.path("data"));
    DataSpec spec{t.path("data"), {"1"}, {}, {}, 5};
    // The uninterrupted run.
    model::OlmoeWeights a = fresh();
    LoaderSource sa(spec, 2, 16, 256);
    auto la = train(a, sa, config(t.path("a")));
    ASSERT_TRUE(std::filesystem::exists(t.path("a/step-3/optimizer.safetensors")));
    ASSERT_TRUE(std::filesystem::exists(t.path("a/step-3/trainer_state.json")));
    EXPECT_EQ(checkpoint_step(t.path("a/step-3")), 3);
    // Resume from step-3 into another directory.
    model::OlmoeWeights b = model::load_checkpoint(t.path("a/step-3"));
    LoaderSource sb(spec, 2, 16, 256);
    auto lb = train(b, sb, config(t.path("b")), {}, t.path("a/step-3"));
    ASSERT_EQ(lb.size(), 3u);
    EXPECT_EQ(lb.front().step, 4);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(lb[i].loss, la[i + 3].loss) << "step " << lb[i].step;
        EXPECT_EQ(lb[i].lr, la[i + 3].lr);
    }
    ASSERT_EQ(a.slab.size(), b.slab.size());
    EXPECT_EQ(0, std::memcmp(a.slab.data(), b.slab.data(), a.slab.size() * 4));
    auto fa = io::SafetensorsFile::open(t.path("a/final/optimizer.safetensors"));
    auto fb = io::SafetensorsFile::open(t.path("b/final/optimizer.safetensors"));
    for (const auto& ti : fa.tensors()) {
        const io::TensorInfo* tb = fb.find(ti.name);
        ASSERT_NE(tb, nullptr) << ti.name;
        EXPECT_EQ(0, std::memcmp(fa.data(ti), fb.data(*tb), ti.numel() * 4)) << ti.name;
    }
    // Negative control: continuing from the step-3 weights without the saved state (fresh
    // moments, schedule and loader) ends elsewhere.
    model::OlmoeWeights c = model::load_checkpoint(t.path("a/step-3"));
    LoaderSource sc(spec, 2, 16, 256);
    TrainConfig cc = config("");
    cc.steps = 3;
    train(c, sc, cc);
    EXPECT_NE(0, std::memcmp(a.slab.data(), c.slab.data(), a.slab.size() * 4));
    // A changed batch shape is refused.
    model::OlmoeWeights d = model::load_checkpoint(t.path("a/step-3"));
    LoaderSource sd(spec, 4, 16, 256);
    EXPECT_TRUE(throws_error_with([&] { train(d, sd, config(""), {}, t.path("a/step-3")); },
                                  {"trainer_state.json", "must not change"}));
}

TEST(Trainer, KeepsTheNewestCheckpointsAndStopsOnNonFiniteLoss) {
    TempDir t;
    write_prepared(t.path("data"));
    DataSpec spec{t.path("data"), {"1"}, {}, {}, 5};
    model::OlmoeWeights w = fresh();
    LoaderSource src(spec, 2, 16, 256);
    TrainConfig c = config(t.path("k"));
    c.steps = 7;
    c.save_every = 1;
    c.keep = 2;
    train(w, src, c);
    EXPECT_FALSE(std::filesystem::exists(t.path("k/step-4")));
    EXPECT_TRUE(std::filesystem::exists(t.path("k/step-5")));
    EXPECT_TRUE(std::filesystem::exists(t.path("k/step-6")));
    EXPECT_TRUE(std::filesystem::exists(t.path("k/final")));
    // A learning rate that blows the weights up: the run stops with a message naming the step.
    model::OlmoeWeights bad = fresh();
    LoaderSource s2(spec, 2, 16, 256);
    TrainConfig b = config("");
    b.adam.lr = 1e30;
    b.warmup = 0;
    b.grad_clip = 0;
    b.steps = 5;
    EXPECT_TRUE(throws_error_with([&] { train(bad, s2, b); }, {"step ", "stopping"}));
}

}  // namespace
}  // namespace polymoe::train
