// Eval tests: per-document losses equal a direct forward of "EOS + document" (also when a long
// document is cut into windows and documents are batched with padding), bits per byte uses the
// tokens' byte lengths, and the bootstrap CI brackets the point estimate and narrows with more
// documents.
#include "eval/eval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/shard.h"
#include "io/io_test_util.h"
#include "model/olmoe.h"

namespace polymoe::eval {
namespace {

using io::testing_util::TempDir;

TEST(Eval, TokenByteLengthsFollowTheByteLevelSpelling) {
    auto tok = tokenizer::Tokenizer::from_file(tokenizer::default_tokenizer_path());
    auto len = token_byte_lengths(tok);
    for (const char* text : {"Hello world", "Всеобщая декларация", "人人生而自由", "मानव अधिकार"}) {
        auto ids = tok.encode(text).ids;
        int64_t sum = 0;
        for (int32_t id : ids)
            sum += len[static_cast<size_t>(id)];
        EXPECT_EQ(sum, static_cast<int64_t>(std::string(text).size())) << text;
    }
    EXPECT_EQ(len[static_cast<size_t>(tok.token_to_id("<|endoftext|>"))], 13);
}

TEST(Eval, ScoresEqualADirectForwardOfEachDocument) {
    TempDir t;
    auto tok = tokenizer::Tokenizer::from_file(tokenizer::default_tokenizer_path());
    // A tiny model with the real vocabulary (so the tokenizer's byte lengths apply).
    model::OlmoeConfig cfg = model::preset("tiny");
    cfg.num_hidden_layers = 1;
    cfg.hidden_size = 32;
    cfg.intermediate_size = 16;
    cfg.num_attention_heads = 2;
    cfg.num_key_value_heads = 2;
    model::OlmoeWeights w(cfg);
    model::init_weights(w, 5);
    const std::string dir = t.path("prep");
    std::filesystem::create_directories(dir);
    const std::vector<std::string> texts = {
        "Everyone has the right to life.",
        "Todo individuo tiene derecho a la vida, a la libertad y a la seguridad de su persona.",
        "x", "Nadie estará sometido a esclavitud ni a servidumbre."};
    {
        data::ShardMeta meta{
            {"spa", "", "Latn", "", "1", ""}, "heldout", "t.json", 1, tok.vocab_size()};
        data::ShardWriter sw(dir + "/" + data::shard_file_name("spa", "heldout", 0), meta);
        for (const auto& s : texts)
            sw.add_document(tok.encode(s).ids, -1);
        sw.finish();
    }
    std::ofstream(dir + "/stats.json")
        << nlohmann::json{{"eos_id", 50279}, {"languages", {{"spa", {{"info", {{"stage", "1"}}}}}}}}
               .dump();
    EvalOptions o;
    o.batch = 3;
    o.seq = 8;  // the long document spans several windows
    auto scores = score_documents(w, tok, dir, o);
    ASSERT_EQ(scores.size(), 1u);
    const auto& docs = scores[0].second;
    ASSERT_EQ(docs.size(), texts.size());
    for (size_t d = 0; d < texts.size(); ++d) {
        auto ids = tok.encode(texts[d]).ids;
        EXPECT_EQ(docs[d].tokens, static_cast<int64_t>(ids.size()));
        EXPECT_EQ(docs[d].bytes, static_cast<int64_t>(texts[d].size()));
        // Direct: each window of up to 7 tokens after EOS, unbatched.
        double want = 0;
        for (size_t b = 0; b < ids.size(); b += 7) {
            std::vector<int32_t> row = {50279};
            for (size_t i = b; i < std::min(ids.size(), b + 7); ++i)
                row.push_back(ids[i]);
            model::Activations a;
            const int64_t S = static_cast<int64_t>(row.size());
            model::allocate_activations(a, cfg, 1, S, true);
            auto r = model::olmoe_forward(a, w, row.data(), nullptr, 1, S);
            want += r.ce * static_cast<double>(r.ce_tokens);
        }
        EXPECT_NEAR(docs[d].loss_nats, want, 1e-4 * want) << texts[d];
    }
    auto j = summarize(docs, 500, 3);
    const double ce = j["ce_nats"]["value"];
    EXPECT_LE(j["ce_nats"]["lo"].get<double>(), ce);
    EXPECT_GE(j["ce_nats"]["hi"].get<double>(), ce);
    EXPECT_NEAR(j["perplexity"]["value"].get<double>(), std::exp(ce), 1e-9);
    double L = 0, B = 0;
    for (const auto& d : docs)
        L += d.loss_nats, B += static_cast<double>(d.bytes);
    EXPECT_NEAR(j["bits_per_byte"]["value"].get<double>(), L / std::log(2.0) / B, 1e-12);
    EXPECT_EQ(j["documents"], 4);
}

TEST(Eval, BootstrapIntervalNarrowsWithMoreDocuments) {
    auto make = [](int n) {
        std::vector<DocScore> d;
        for (int i = 0; i < n; ++i)
            d.push_back({3.0 + (i % 5) * 2.0, 1 + i % 3, 4 + i % 7});
        return d;
    };
    auto a = summarize(make(20), 400, 1), b = summarize(make(2000), 400, 1);
    const double wa = a["ce_nats"]["hi"].get<double>() - a["ce_nats"]["lo"].get<double>();
    const double wb = b["ce_nats"]["hi"].get<double>() - b["ce_nats"]["lo"].get<double>();
    EXPECT_GT(wa, 3 * wb);  // ~ 1/sqrt(n): 10x narrower in expectation
    EXPECT_GT(wb, 0.0);
    // Same seed, same interval.
    EXPECT_EQ(summarize(make(20), 400, 1).dump(), a.dump());
}

}  // namespace
}  // namespace polymoe::eval

namespace polymoe::eval {
namespace {

TEST(Eval, PairedDeltaKeepsDocumentsTogether) {
    std::vector<DocScore> base = {{30.0, 10, 40}, {12.0, 4, 9}, {50.0, 25, 70}, {7.5, 3, 11}};
    // Every document loses exactly 0.1 nats per token more: the pooled delta is 0.1, and so is
    // every paired replicate, however the documents are resampled.
    std::vector<DocScore> other = base;
    for (auto& d : other)
        d.loss_nats += 0.1 * static_cast<double>(d.tokens);
    const auto j = summarize_delta(base, other, 200, 1);
    EXPECT_NEAR(j["delta_ce_nats"]["value"].get<double>(), 0.1, 1e-12);
    EXPECT_NEAR(j["delta_ce_nats"]["lo"].get<double>(), 0.1, 1e-12);
    EXPECT_NEAR(j["delta_ce_nats"]["hi"].get<double>(), 0.1, 1e-12);
    EXPECT_NEAR(j["delta_bits_per_byte"]["value"].get<double>(), 0.1 * 42 / std::log(2.0) / 130,
                1e-12);
    // Negative control: unpaired changes (one document much worse) give a wide interval.
    other = base;
    other[2].loss_nats += 25;
    const auto w = summarize_delta(base, other, 200, 1);
    EXPECT_NEAR(w["delta_ce_nats"]["value"].get<double>(), 25.0 / 42, 1e-12);
    EXPECT_LT(w["delta_ce_nats"]["lo"].get<double>(), 0.1);
    EXPECT_GT(w["delta_ce_nats"]["hi"].get<double>(), 0.6);
    other.pop_back();
    EXPECT_THROW(summarize_delta(base, other, 10, 1), Error);
}

}  // namespace
}  // namespace polymoe::eval
