// bf16-resident weights (model::WeightsMode::Bf16Resident) against bf16-compute mode on the same
// checkpoint: GEMM weights served from the safetensors mappings (or one owned bf16 copy) must give
// bit-identical logits, routing and losses to load_checkpoint + set_compute_bf16(), for bf16
// checkpoints (mapped, sharded) and f32 ones (owned copies, rounded the same way). A perturbed
// expert weight must change the result (the comparison can fail).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/error.h"
#include "model/olmoe.h"
#include "train/trainer.h"

namespace polymoe::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(POLYMOE_SOURCE_DIR) / "tests" / "fixtures";

struct Tokens {
    std::vector<int32_t> ids;
    int64_t B = 0, S = 0;
};

// A deterministic token batch (the fixtures' tokens.npy are exercised by golden_test).
Tokens make_tokens(const model::OlmoeConfig& c, int64_t B, int64_t S) {
    Tokens t{std::vector<int32_t>(static_cast<size_t>(B * S)), B, S};
    for (size_t i = 0; i < t.ids.size(); ++i)
        t.ids[i] = static_cast<int32_t>((i * 7919 + 13) % static_cast<size_t>(c.vocab_size));
    return t;
}

class RouterDump : public model::ForwardObserver {
public:
    std::vector<float> probs;
    std::vector<int32_t> idx;
    void on_router(int,
                   int64_t T,
                   int64_t E,
                   int64_t K,
                   const float*,
                   const float* p,
                   const int32_t* i,
                   const float*,
                   const float*) override {
        probs.insert(probs.end(), p, p + T * E);
        idx.insert(idx.end(), i, i + T * K);
    }
};

struct Outputs {
    std::vector<float> logits, probs;
    std::vector<int32_t> idx;
    double ce = 0, olmoe_total = 0, hf_total = 0;
};

Outputs forward(const model::OlmoeWeights& w, const Tokens& t) {
    model::Activations a;
    model::allocate_activations(a, w.config, t.B, t.S, true);
    RouterDump dump;
    model::ForwardResult r = model::olmoe_forward(a, w, t.ids.data(), nullptr, t.B, t.S, &dump);
    return {a.logits, dump.probs, dump.idx, r.ce, r.olmoe_total, r.hf_total};
}

void expect_identical(const Outputs& a, const Outputs& b) {
    EXPECT_EQ(a.logits, b.logits);
    EXPECT_EQ(a.probs, b.probs);
    EXPECT_EQ(a.idx, b.idx);
    EXPECT_EQ(a.ce, b.ce);
    EXPECT_EQ(a.olmoe_total, b.olmoe_total);
    EXPECT_EQ(a.hf_total, b.hf_total);
}

int64_t gemm_elements(const model::OlmoeWeights& w) {
    int64_t n = 0;
    for (const auto& p : w.table.params())
        if (model::is_gemm_weight(p.kind) ||
            (p.kind == model::ParamKind::Embedding && w.config.tie_word_embeddings))
            n += p.numel;
    return n;
}

// A scratch directory removed at the end of the test.
struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& tag)
        : path(fs::temp_directory_path() /
               fmt::format("polymoe_resident_{}_{}", tag, static_cast<long>(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

void check_dir(const std::string& dir, bool expect_mapped) {
    model::OlmoeWeights ref = model::load_checkpoint(dir);
    ref.set_compute_bf16();
    const model::OlmoeWeights res = model::load_checkpoint(dir, model::WeightsMode::Bf16Resident);
    ASSERT_TRUE(res.bf16_resident());
    ASSERT_TRUE(res.compute_bf16());
    EXPECT_TRUE(res.slab.empty()) << "bf16-resident mode must not hold the f32 slab";
    const int64_t gemm = gemm_elements(res);
    // A stacked expert run that a shard boundary splits cannot be mapped and gets an owned copy.
    EXPECT_EQ(res.resident->mapped_elements + static_cast<int64_t>(res.resident->owned.size()),
              gemm)
        << dir;
    if (expect_mapped)
        EXPECT_GT(res.resident->mapped_elements, gemm / 2) << dir;
    else
        EXPECT_EQ(res.resident->mapped_elements, 0) << dir;
    EXPECT_EQ(static_cast<int64_t>(res.resident->small.size()) + gemm -
                  (res.config.tie_word_embeddings
                       ? res.table.params()[0].numel  // the tied embedding is in both
                       : 0),
              res.table.total());
    const Tokens t = make_tokens(res.config, 2, 9);
    expect_identical(forward(ref, t), forward(res, t));
}

class Resident : public ::testing::TestWithParam<std::string> {};

// Committed fixtures: f32 checkpoints (owned bf16 copies) and a sharded bf16 one (mapped).
TEST_P(Resident, BitIdenticalToBf16Compute) {
    const std::string name = GetParam();
    check_dir((kFixtures / name).string(), name == "micro_bf16_sharded");
}

INSTANTIATE_TEST_SUITE_P(Fixtures,
                         Resident,
                         ::testing::Values("micro",
                                           "micro_tied",
                                           "micro_bias",
                                           "micro_gqa",
                                           "micro_clip",
                                           "micro_bf16_sharded"));

// The tiny preset's dimensions with a 512-token vocabulary (its 50,304-row embedding and head
// would make init and save dominate the test time), initialised as `polymoe init --seed 7`.
model::OlmoeWeights tiny_weights() {
    std::ifstream in(kFixtures / "tiny" / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    j["vocab_size"] = 512;
    model::OlmoeWeights w(model::OlmoeConfig::from_json(j, "tiny/config.json"));
    model::init_weights(w, 7);
    return w;
}

// The tiny preset written as bf16 in 3 shards and as one f32 file: mapped and owned paths.
TEST(ResidentTiny, BitIdenticalToBf16ComputeBf16AndF32Checkpoints) {
    const model::OlmoeWeights w = tiny_weights();
    TempDir tmp("tiny");
    model::save_checkpoint(w, (tmp.path / "bf16").string(), DType::BF16, 3);
    model::save_checkpoint(w, (tmp.path / "bf16_single").string(), DType::BF16, 1);
    model::save_checkpoint(w, (tmp.path / "f32").string(), DType::F32, 1);
    check_dir((tmp.path / "bf16").string(), true);
    // One file: every GEMM weight comes from the mapping, nothing is copied.
    const model::OlmoeWeights single = model::load_checkpoint((tmp.path / "bf16_single").string(),
                                                              model::WeightsMode::Bf16Resident);
    EXPECT_EQ(single.resident->mapped_elements, gemm_elements(single));
    EXPECT_TRUE(single.resident->owned.empty());
    check_dir((tmp.path / "f32").string(), false);
}

// Negative control: one perturbed expert weight in the resident checkpoint changes the logits
// against bf16 compute on the unperturbed one, so the equality above can fail.
TEST(ResidentTiny, PerturbedWeightChangesTheResult) {
    model::OlmoeWeights w = tiny_weights();
    TempDir tmp("perturb");
    model::save_checkpoint(w, (tmp.path / "clean").string(), DType::BF16, 2);
    const model::ParamSpec* p = w.table.find("model.layers.1.mlp.experts.3.down_proj.weight");
    ASSERT_NE(p, nullptr);
    for (int64_t i = 0; i < p->numel; ++i)
        w.get(*p)[i] += 0.05f;
    model::save_checkpoint(w, (tmp.path / "perturbed").string(), DType::BF16, 2);
    model::OlmoeWeights ref = model::load_checkpoint((tmp.path / "clean").string());
    ref.set_compute_bf16();
    const model::OlmoeWeights res =
        model::load_checkpoint((tmp.path / "perturbed").string(), model::WeightsMode::Bf16Resident);
    const Tokens t = make_tokens(res.config, 2, 16);
    const Outputs a = forward(ref, t), b = forward(res, t);
    EXPECT_NE(a.logits, b.logits);
    EXPECT_NE(a.ce, b.ce);
}

// Parameter-efficient training over bf16-resident weights: router-only AdamW steps must equal,
// bit for bit, the same steps with f32 master weights in bf16 compute (the forward is identical
// and so is the backward through the frozen bf16 GEMM weights); the trained routers round-trip
// through a checkpoint exactly while the GEMM weights keep their bf16 bytes. Controls: the
// routers did move, and a GEMM weight cannot be made trainable in this mode.
TEST(ResidentTraining, RouterOnlyStepsEqualBf16ComputeAndRoundTripThroughACheckpoint) {
    const std::string dir = (kFixtures / "micro_bf16_sharded").string();
    model::OlmoeWeights ref = model::load_checkpoint(dir);
    ref.set_compute_bf16();
    const std::vector<float> before = ref.slab;
    model::OlmoeWeights res = model::load_checkpoint(dir, model::WeightsMode::Bf16Resident);
    const Tokens t = make_tokens(res.config, 2, 16);
    train::TrainConfig c;
    c.steps = 4;
    c.adam.lr = 1e-2;
    c.trainable = "routers";
    const auto a = train::train_fixed_batch(ref, t.ids, {}, t.B, t.S, c);
    const auto b = train::train_fixed_batch(res, t.ids, {}, t.B, t.S, c);
    ASSERT_EQ(a.size(), b.size());
    for (size_t s = 0; s < a.size(); ++s) {
        EXPECT_EQ(a[s].loss, b[s].loss) << "step " << a[s].step;
        EXPECT_EQ(a[s].grad_norm, b[s].grad_norm) << "step " << a[s].step;
    }
    const auto& params = res.table.params();
    int64_t routers = 0;
    for (size_t i = 0; i < params.size(); ++i) {
        const model::ParamSpec& p = params[i];
        if (p.kind != model::ParamKind::RouterGate) continue;
        ++routers;
        const float* r = res.master().data() + res.master_offset(i);
        EXPECT_EQ(0, std::memcmp(r, ref.get(p), static_cast<size_t>(p.numel) * 4)) << p.name;
        EXPECT_NE(0, std::memcmp(r, before.data() + p.offset, static_cast<size_t>(p.numel) * 4))
            << p.name << " did not train";
    }
    EXPECT_EQ(routers, res.config.num_hidden_layers);

    TempDir tmp("restrain");
    const std::string out = (tmp.path / "ck").string();
    model::save_checkpoint(res, out, DType::F32, 2);
    const model::OlmoeWeights back = model::load_checkpoint(out, model::WeightsMode::Bf16Resident);
    EXPECT_EQ(back.master(), res.master());  // routers (and the rest of the f32 store) exact
    for (size_t i = 0; i < params.size(); ++i) {
        if (res.master_offset(i) >= 0) continue;
        EXPECT_EQ(0, std::memcmp(back.resident->bf16[i], res.resident->bf16[i],
                                 static_cast<size_t>(params[i].numel) * 2))
            << params[i].name;
    }
    const Outputs fa = forward(ref, t), fb = forward(back, t);
    EXPECT_EQ(fa.logits, fb.logits);  // the trained model, reloaded, is the trained model

    c.trainable = "routers,model.layers.1.mlp.experts.2.up_proj.weight";
    try {
        train::train_fixed_batch(res, t.ids, {}, t.B, t.S, c);
        ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.experts.2.up_proj.weight is held "
                                             "only in bf16"),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace polymoe::testing
