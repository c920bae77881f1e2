// Trainer tests: training over prepared shards through LoaderSource, and exact resume — a run
// stopped at step-3 and resumed reaches bit-identical weights and optimizer moments to one that
// never stopped (same thread count), with the loader picking up at the same batch. --trainable:
// frozen parameters keep their bits, have no optimizer state, trainable gradients equal those of
// the full backward, and subset runs resume exactly. Periodic held-out evaluation hooks.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "data/shard.h"
#include "io/io_test_util.h"
#include "io/safetensors.h"
#include "model/olmoe.h"
#include "model/params.h"
#include "train/data_source.h"
#include "train/param_pattern.h"

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

std::string read_file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
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

std::vector<std::string> selected_names(const model::ParamTable& t, const std::string& pattern) {
    const ParamSelection s = select_params(t, pattern, "--trainable");
    std::vector<std::string> out;
    for (size_t i = 0; i < s.selected.size(); ++i)
        if (s.selected[i]) out.push_back(t.params()[i].name);
    return out;
}

TEST(ParamPattern, GlobsBracesRangesRegexGroupsAndExclusions) {
    const model::ParamTable t(model::preset("micro"));  // 2 layers, 8 experts
    using V = std::vector<std::string>;
    EXPECT_EQ(selected_names(t, "routers"),
              (V{"model.layers.0.mlp.gate.weight", "model.layers.1.mlp.gate.weight"}));
    EXPECT_EQ(selected_names(t, "*.mlp.gate.weight"), selected_names(t, "routers"));
    EXPECT_EQ(selected_names(t, "re:model\\.layers\\.[0-9]+\\.mlp\\.gate\\.weight"),
              selected_names(t, "routers"));
    EXPECT_EQ(selected_names(t, "model.layers.1.mlp.experts.{3,7}.down_proj.weight"),
              (V{"model.layers.1.mlp.experts.3.down_proj.weight",
                 "model.layers.1.mlp.experts.7.down_proj.weight"}));
    EXPECT_EQ(selected_names(t, "model.layers.{0..1}.mlp.experts.{2..3}.up_proj.weight").size(),
              4u);
    EXPECT_EQ(selected_names(t, "model.layers.[1-9].input_layernorm.weight"),
              (V{"model.layers.1.input_layernorm.weight"}));
    EXPECT_EQ(selected_names(t, "embeddings"), (V{"model.embed_tokens.weight", "lm_head.weight"}));
    // Exclusions only: everything else.
    EXPECT_EQ(selected_names(t, "!experts").size() + 2 * 3 * 8, t.params().size());
    EXPECT_EQ(selected_names(t, "model.layers.1.*, !experts, !norms"),
              (V{"model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
                 "model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
                 "model.layers.1.mlp.gate.weight"}));
    // A term that matches nothing is an error naming it, even beside terms that match.
    EXPECT_TRUE(throws_error_with([&] { select_params(t, "routers,*.mlp.gates.weight", "--x"); },
                                  {"--x", "'*.mlp.gates.weight'", "matches no parameter"}));
    EXPECT_TRUE(throws_error_with([&] { select_params(t, "model.layers.7.*", "--trainable"); },
                                  {"model.layers.7.*", "layers 0..1"}));
    EXPECT_TRUE(throws_error_with([&] { select_params(t, "router", "--trainable"); },
                                  {"'router'", "routers"}));
    EXPECT_TRUE(throws_error_with([&] { select_params(t, "routers,!routers", "--trainable"); },
                                  {"at least one parameter"}));
    EXPECT_TRUE(throws_error_with([&] { select_params(t, "model.layers.{0,1.*", "--trainable"); },
                                  {"'}'"}));
    EXPECT_TRUE(throws_error_with([&] { select_params(t, "re:(", "--trainable"); },
                                  {"regular expression"}));
    EXPECT_TRUE(throws_error_with([&] { select_params(t, " , ", "--trainable"); }, {"term"}));
}

// A fixed batch of n token ids below 250 (within every preset's vocabulary).
std::vector<int32_t> fixed_ids(int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (size_t i = 0; i < ids.size(); ++i)
        ids[i] = static_cast<int32_t>((i * 37 + 11) % 250);
    return ids;
}

// The subset backward computes the trainable gradients of the full backward (same batch, same
// weights), for patterns that stop it at different depths.
TEST(Trainable, GradientsEqualThoseOfTheFullBackward) {
    model::OlmoeWeights w = fresh();
    const int64_t B = 2, S = 16;
    const std::vector<int32_t> ids = fixed_ids(B * S);
    model::Activations a;
    model::allocate_activations(a, w.config, B, S, true, true);
    std::vector<float> full(w.slab.size(), 0.0f);
    const auto r = model::olmoe_forward_backward(full, a, w, ids.data(), nullptr, B, S,
                                                 model::Objective::Olmoe);
    for (const std::string pattern :
         {"routers", "model.layers.1.*", "model.layers.*.mlp.experts.{3,7}.*", "lm_head.weight",
          "model.layers.0.self_attn.o_proj.weight", "model.layers.1.self_attn.{q,k}_norm.weight",
          "norms", "embeddings", "model.layers.0.input_layernorm.weight,routers", "all"}) {
        const ParamSelection sel = select_params(w.table, pattern, "--trainable");
        const model::GradLayout lay = model::GradLayout::subset(w.table, sel.selected);
        EXPECT_EQ(lay.total, sel.elements);
        std::vector<float> g(static_cast<size_t>(lay.total), 0.0f);
        const auto rs = model::olmoe_forward_backward(g.data(), lay, a, w, ids.data(), nullptr, B,
                                                      S, model::Objective::Olmoe);
        EXPECT_EQ(rs.olmoe_total, r.olmoe_total) << pattern;
        double worst = 0;
        for (size_t i = 0; i < w.table.params().size(); ++i) {
            if (lay.frozen(i)) continue;
            const auto& p = w.table.params()[i];
            double mx = 0, d = 0;
            for (int64_t j = 0; j < p.numel; ++j) {
                mx = std::max(mx, std::abs(double(full[p.offset + j])));
                d = std::max(d, std::abs(double(full[p.offset + j]) - g[lay.offset[i] + j]));
            }
            worst = std::max(worst, mx > 0 ? d / mx : d);
        }
        // The same kernels on the same inputs: bit-identical in practice.
        EXPECT_LE(worst, 1e-7) << pattern;
        std::printf("[ trainable ] %-52s %4lld tensors, max rel grad diff %.3g\n", pattern.c_str(),
                    static_cast<long long>(sel.tensors), worst);
    }
}

// The backward writes every trainable gradient element (the trainer does not zero the buffer
// between steps): a buffer full of NaN before the call gives the same bits as a zeroed one, for
// full, partial and tied-embedding models, with experts that receive no token (16 tokens, 8
// experts of which 2 per token: some stay empty at this seed).
TEST(Trainable, BackwardOverwritesEveryGradientElement) {
    for (bool tied : {false, true}) {
        model::OlmoeConfig cfg = model::preset("micro");
        cfg.tie_word_embeddings = tied;
        model::OlmoeWeights w(cfg);
        model::init_weights(w, 3);
        const int64_t B = 1, S = 16;
        const std::vector<int32_t> ids = fixed_ids(B * S);
        model::Activations a;
        model::allocate_activations(a, w.config, B, S, true, true);
        for (const std::string pattern : {"all", "routers,norms", "embeddings", "lm_head.weight",
                                          "model.layers.1.*", "model.layers.*.mlp.experts.*"}) {
            if (tied && pattern == "lm_head.weight") continue;
            const ParamSelection sel = select_params(w.table, pattern, "--trainable");
            const model::GradLayout lay = model::GradLayout::subset(w.table, sel.selected);
            std::vector<float> zero(static_cast<size_t>(lay.total), 0.0f),
                nan(zero.size(), std::numeric_limits<float>::quiet_NaN());
            model::olmoe_forward_backward(zero.data(), lay, a, w, ids.data(), nullptr, B, S,
                                          model::Objective::Olmoe);
            model::olmoe_forward_backward(nan.data(), lay, a, w, ids.data(), nullptr, B, S,
                                          model::Objective::Olmoe);
            EXPECT_EQ(0, std::memcmp(zero.data(), nan.data(), zero.size() * 4))
                << pattern << (tied ? " (tied)" : "");
            // The empty-expert case is exercised: some expert of layer 0 got no row.
            const auto& count = a.saved[0].moe.count;
            EXPECT_NE(std::find(count.begin(), count.end(), 0), count.end());
        }
    }
}

TEST(Trainable, RoutersOnlyChangesOnlyRoutersAndKeepsStateForThemOnly) {
    TempDir t;
    write_prepared(t.path("data"));
    DataSpec spec{t.path("data"), {"1"}, {}, {}, 5};
    model::OlmoeWeights w = fresh();
    const std::vector<float> before = w.slab;
    LoaderSource src(spec, 2, 16, 256);
    TrainConfig c = config(t.path("r"));
    c.trainable = "routers";
    train(w, src, c);
    int64_t changed = 0;
    for (const auto& p : w.table.params()) {
        const bool same =
            std::memcmp(w.get(p), before.data() + p.offset, static_cast<size_t>(p.numel) * 4) == 0;
        if (p.kind == model::ParamKind::RouterGate)
            changed += !same;
        else
            EXPECT_TRUE(same) << p.name;
    }
    EXPECT_EQ(changed, 2);
    auto f = io::SafetensorsFile::open(t.path("r/final/optimizer.safetensors"));
    std::vector<std::string> names;
    for (const auto& ti : f.tensors())
        names.push_back(ti.name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"exp_avg.model.layers.0.mlp.gate.weight",
                                               "exp_avg.model.layers.1.mlp.gate.weight",
                                               "exp_avg_sq.model.layers.0.mlp.gate.weight",
                                               "exp_avg_sq.model.layers.1.mlp.gate.weight"}));
    // The saved (final) weights are the trained ones; frozen tensors are the initial bits.
    model::OlmoeWeights back = model::load_checkpoint(t.path("r/final"));
    EXPECT_EQ(0, std::memcmp(back.slab.data(), w.slab.data(), w.slab.size() * 4));
}

TEST(Trainable, SubsetResumeIsBitExactAndAnotherPatternIsRefused) {
    TempDir t;
    write_prepared(t.path("data"));
    DataSpec spec{t.path("data"), {"1"}, {}, {}, 5};
    const std::string pattern = "model.layers.1.*,!model.layers.1.mlp.experts.{0..3}.*";
    model::OlmoeWeights a = fresh();
    LoaderSource sa(spec, 2, 16, 256);
    TrainConfig ca = config(t.path("a"));
    ca.trainable = pattern;
    auto la = train(a, sa, ca);
    model::OlmoeWeights b = model::load_checkpoint(t.path("a/step-3"));
    LoaderSource sb(spec, 2, 16, 256);
    TrainConfig cb = config(t.path("b"));
    cb.trainable = pattern;
    auto lb = train(b, sb, cb, {}, t.path("a/step-3"));
    ASSERT_EQ(lb.size(), 3u);
    for (size_t i = 0; i < 3; ++i)
        EXPECT_EQ(lb[i].loss, la[i + 3].loss);
    EXPECT_EQ(0, std::memcmp(a.slab.data(), b.slab.data(), a.slab.size() * 4));
    const std::string oa = read_file_bytes(t.path("a/final/optimizer.safetensors"));
    EXPECT_FALSE(oa.empty());
    EXPECT_EQ(oa, read_file_bytes(t.path("b/final/optimizer.safetensors")));
    // Another pattern (or full training) from this checkpoint is refused by name.
    for (const std::string other : {"routers", ""}) {
        model::OlmoeWeights d = model::load_checkpoint(t.path("a/step-3"));
        LoaderSource sd(spec, 2, 16, 256);
        TrainConfig cd = config("");
        cd.trainable = other;
        EXPECT_TRUE(throws_error_with([&] { train(d, sd, cd, {}, t.path("a/step-3")); },
                                      {"--trainable", pattern}))
            << other;
    }
}

// bf16 compute: the GEMMs read a bf16 copy of the f32 master weights, so after every step the
// copy must be the rounding of the updated master, and the run must still learn. Control: the
// copy taken before training no longer matches the trained master.
TEST(Trainer, Bf16ComputeKeepsTheBf16CopyOnTheMasterWeights) {
    TempDir t;
    write_prepared(t.path("data"));
    DataSpec spec{t.path("data"), {"1"}, {}, {}, 5};
    model::OlmoeWeights w = fresh();
    w.set_compute_bf16();
    const std::vector<bf16_t> copy_before = w.slab_bf16;
    LoaderSource src(spec, 2, 16, 256);
    TrainConfig c = config("");
    c.steps = 8;
    c.save_every = 0;
    const auto logs = train(w, src, c);
    ASSERT_EQ(logs.size(), 8u);
    for (const auto& l : logs)
        EXPECT_TRUE(std::isfinite(l.loss) && std::isfinite(l.grad_norm)) << "step " << l.step;
    EXPECT_LT(logs.back().loss, logs.front().loss);  // lr 1e-2 on a tiny corpus: it must learn
    size_t stale = 0, moved = 0;
    for (size_t i = 0; i < w.slab.size(); ++i) {
        stale += w.slab_bf16[i] != f32_to_bf16(w.slab[i]);
        moved += copy_before[i] != f32_to_bf16(w.slab[i]);
    }
    EXPECT_EQ(stale, 0u);
    EXPECT_GT(moved, w.slab.size() / 2);
}

TEST(Trainer, EvaluatesEveryIntervalThroughTheHook) {
    TempDir t;
    write_prepared(t.path("data"));
    DataSpec spec{t.path("data"), {"1"}, {}, {}, 5};
    model::OlmoeWeights w = fresh();
    LoaderSource src(spec, 2, 16, 256);
    TrainConfig c = config("");
    c.steps = 5;
    c.eval_interval = 2;
    std::vector<int64_t> at;
    std::vector<std::string> lines;
    c.evaluate = [&](const model::OlmoeWeights&) {
        return nlohmann::ordered_json{{"ce_by_language", {{"aaa", 1.5}}}};
    };
    c.on_eval = [&](const std::string& line) {
        lines.push_back(line);
        at.push_back(nlohmann::json::parse(line).at("step").get<int64_t>());
    };
    train(w, src, c);
    EXPECT_EQ(at, (std::vector<int64_t>{0, 2, 4, 5}));
    const auto j = nlohmann::json::parse(lines.back());
    EXPECT_EQ(j.at("event"), "eval");
    EXPECT_EQ(j.at("ce_by_language").at("aaa").get<double>(), 1.5);
    EXPECT_TRUE(j.contains("seconds"));
}

}  // namespace
}  // namespace polymoe::train
