// Ablation test on a synthetic model whose routing is known: one layer, top-1, language aaa's
// tokens are hard-routed to expert 0 and bbb's to expert 1 (the embeddings of each language's
// token ids carry a marker dimension the router reads; attention is switched off). Removing
// aaa's expert must change only aaa's loss (ΔCE[aaa][bbb] is exactly 0) and vice versa.
#include "eval/ablate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/shard.h"
#include "io/io_test_util.h"

namespace polymoe::eval {
namespace {

using io::testing_util::TempDir;

TEST(Ablate, HardRoutedLanguagesGiveADiagonalMatrix) {
    TempDir t;
    auto tok = tokenizer::Tokenizer::from_file(tokenizer::default_tokenizer_path());
    model::OlmoeConfig cfg = model::preset("tiny");
    cfg.num_hidden_layers = 1;
    cfg.hidden_size = 16;
    cfg.intermediate_size = 8;
    cfg.num_attention_heads = 2;
    cfg.num_key_value_heads = 2;
    cfg.num_experts = 4;
    cfg.num_experts_per_tok = 1;
    model::OlmoeWeights w(cfg);
    model::init_weights(w, 9);
    const int64_t H = cfg.hidden_size;
    auto tensor = [&](const std::string& name) {
        const model::ParamSpec* p = w.table.find(name);
        EXPECT_NE(p, nullptr) << name;
        return w.slab.data() + p->offset;
    };
    // aaa uses ids 1000..1099, bbb 2000..2099: marker dims 0 and 1.
    float* emb = tensor("model.embed_tokens.weight");
    for (int id = 1000; id < 1100; ++id)
        emb[id * H + 0] = 5.0f, emb[id * H + 1] = 0.0f;
    for (int id = 2000; id < 2100; ++id)
        emb[id * H + 1] = 5.0f, emb[id * H + 0] = 0.0f;
    float* o = tensor("model.layers.0.self_attn.o_proj.weight");
    std::fill_n(o, H * H, 0.0f);  // attention adds nothing: the router sees the embedding
    float* gate = tensor("model.layers.0.mlp.gate.weight");  // [E, H]
    std::fill_n(gate, 4 * H, 0.0f);
    gate[0 * H + 0] = 4.0f;
    gate[1 * H + 1] = 4.0f;
    // Make experts 0 and 1 matter: their outputs dominate the residual stream.
    for (int e = 0; e < 2; ++e) {
        float* down =
            tensor("model.layers.0.mlp.experts." + std::to_string(e) + ".down_proj.weight");
        for (int64_t i = 0; i < H * cfg.intermediate_size; ++i)
            down[i] *= 2000.0f;
    }
    float* head = tensor("lm_head.weight");  // sharp logits, so the residual's direction matters
    for (int64_t i = 0; i < cfg.vocab_size * H; ++i)
        head[i] *= 100.0f;
    const std::string dir = t.path("prep");
    std::filesystem::create_directories(dir);
    nlohmann::json langs = nlohmann::json::object();
    for (int l = 0; l < 2; ++l) {
        const std::string code = l == 0 ? "aaa" : "bbb";
        data::ShardMeta meta{
            {code, "", "Latn", "", "1", ""}, "heldout", "t.json", 1, tok.vocab_size()};
        data::ShardWriter sw(dir + "/" + data::shard_file_name(code, "heldout", 0), meta);
        for (int d = 0; d < 6; ++d) {
            std::vector<int32_t> ids;
            for (int i = 0; i < 12; ++i)
                ids.push_back(1000 * (l + 1) + (d * 17 + i * 7) % 100);
            sw.add_document(ids, d);
        }
        sw.finish();
        langs[code] = {{"info", {{"stage", "1"}}}};
    }
    // The EOS that precedes every document is routed too; give it no marker (it goes to
    // expert 2 or 3 by the zero logits' tie rule), so neither ablation touches it.
    std::ofstream(dir + "/stats.json")
        << nlohmann::json{{"eos_id", 50279}, {"languages", langs}}.dump();
    nlohmann::json analysis = {{"traces",
                                {{{"label", "synthetic"},
                                  {"num_experts", 4},
                                  {"languages", {{{"code", "aaa"}}, {{"code", "bbb"}}}},
                                  {"specific_experts",
                                   {{"layers",
                                     {{{"layer", 0},
                                       {"specific",
                                        {{{"expert", 0}, {"language", "aaa"}},
                                         {{"expert", 1}, {"language", "bbb"}}}}}}}}}}}}};
    AblateOptions ao;
    ao.eval.bootstrap = 50;
    ao.random_seeds = 2;
    auto j = run_ablations(w, tok, dir, analysis, ao);
    const auto& rows = j["ranges"][0]["rows"];
    ASSERT_EQ(rows.size(), 2u);
    for (int a = 0; a < 2; ++a) {
        const std::string self = a == 0 ? "aaa" : "bbb", other = a == 0 ? "bbb" : "aaa";
        const auto& row = rows[a];
        EXPECT_EQ(row["ablated"], self);
        EXPECT_EQ(row["delta_ce"][other]["value"].get<double>(), 0.0) << row.dump();
        EXPECT_GT(std::abs(row["delta_ce"][self]["value"].get<double>()), 1e-3) << row.dump();
        EXPECT_EQ(row["experts_removed"]["0"], 1);
    }
    EXPECT_EQ(j["evaluations"], 1 + 2 * (1 + 2));
    // Negative control: an analysis naming unused experts (2 for aaa) leaves aaa unchanged.
    analysis["traces"][0]["specific_experts"]["layers"][0]["specific"] = {
        {{"expert", 3}, {"language", "aaa"}}};
    auto k = run_ablations(w, tok, dir, analysis, ao);
    const auto& r0 = k["ranges"][0]["rows"][0];
    EXPECT_EQ(r0["ablated"], "aaa");
    // Expert 3 takes the EOS positions only when it wins the zero-logit tie; either way the
    // language tokens are untouched, so the change is at most the EOS-predicted first token.
    EXPECT_LT(std::abs(r0["delta_ce"]["aaa"]["value"].get<double>()),
              std::abs(rows[0]["delta_ce"]["aaa"]["value"].get<double>()));
}

}  // namespace
}  // namespace polymoe::eval
