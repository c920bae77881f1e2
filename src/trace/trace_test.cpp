// Trace tests: file round trip (odd token counts exercise padding, logits on), crash recovery of
// a torn last chunk, format errors, and capture against a direct forward of each document.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/shard.h"
#include "io/io_test_util.h"
#include "model/olmoe.h"
#include "trace/capture.h"
#include "trace/trace_file.h"

namespace polymoe::trace {
namespace {

using io::testing_util::read_bytes;
using io::testing_util::TempDir;
using io::testing_util::throws_error_with;
using io::testing_util::write_bytes;

TraceHeader small_header(bool logits) {
    TraceHeader h;
    h.num_experts = 5;
    h.top_k = 2;
    h.layers = {0, 2, 3};
    h.languages = {{"spa", "Spanish", "Latn", "Romance", "1", ""},
                   {"glg", "Galician", "Latn", "Romance", "2", "spa"}};
    h.has_logits = logits;
    h.model = "m";
    h.label = "base";
    h.data = "d";
    return h;
}

ChunkBuffer fill(int64_t n, int seed, bool logits) {
    ChunkBuffer c;
    c.reset(3, 2, 5, logits);
    for (int64_t i = 0; i < n; ++i) {
        c.lang.push_back(static_cast<uint16_t>((i + seed) % 2));
        c.doc.push_back(static_cast<uint32_t>(seed * 10 + i / 3));
        c.passage.push_back(i % 4 == 0 ? -1 : static_cast<int32_t>(i));
        c.position.push_back(static_cast<uint32_t>(i % 3));
        c.token.push_back(static_cast<uint32_t>(1000 + i));
        for (int r = 0; r < 3; ++r) {
            for (int k = 0; k < 2; ++k) {
                c.expert[r].push_back(static_cast<uint16_t>((i + r + k * 2 + seed) % 5));
                c.weight[r].push_back(0.1f * static_cast<float>(r + k) +
                                      0.01f * static_cast<float>(i));
            }
            for (int e = 0; e < 5 && logits; ++e)
                c.logit[r].push_back(static_cast<float>(e - r) * 0.5f + i);
        }
    }
    return c;
}

void expect_chunk_eq(const TraceChunk& got, const ChunkBuffer& want) {
    ASSERT_EQ(got.n, want.size());
    for (int64_t i = 0; i < got.n; ++i) {
        EXPECT_EQ(got.lang[i], want.lang[i]);
        EXPECT_EQ(got.doc[i], want.doc[i]);
        EXPECT_EQ(got.passage[i], want.passage[i]);
        EXPECT_EQ(got.position[i], want.position[i]);
        EXPECT_EQ(got.token[i], want.token[i]);
        for (int r = 0; r < 3; ++r)
            for (int k = 0; k < 2; ++k) {
                EXPECT_EQ(got.experts_at(r, i, 2)[k], want.expert[r][i * 2 + k]);
                EXPECT_EQ(got.weights_at(r, i, 2)[k], want.weight[r][i * 2 + k]);
            }
        if (want.logits) {
            for (int r = 0; r < 3; ++r)
                for (int e = 0; e < 5; ++e)
                    EXPECT_EQ(got.logits[(r * got.n + i) * 5 + e], want.logit[r][i * 5 + e]);
        }
    }
}

TEST(TraceFile, RoundTripWithPaddingAndLogits) {
    TempDir t;
    for (bool logits : {false, true}) {
        std::string path = t.path(logits ? "l.trace" : "n.trace");
        ChunkBuffer a = fill(7, 0, logits), b = fill(3, 1, logits);
        {
            TraceWriter w(path, small_header(logits));
            w.write_chunk(a);
            w.write_chunk(b);
            w.finish();
        }
        EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
        TraceFile f = TraceFile::open(path);
        EXPECT_FALSE(f.truncated());
        const TraceHeader& h = f.header();
        EXPECT_EQ(h.num_experts, 5);
        EXPECT_EQ(h.top_k, 2);
        EXPECT_EQ(h.layers, (std::vector<int>{0, 2, 3}));
        EXPECT_EQ(h.languages[1].related, "spa");
        EXPECT_EQ(h.label, "base");
        EXPECT_EQ(h.has_logits, logits);
        EXPECT_EQ(h.num_documents, 11);  // doc ids up to 10 + 2
        ASSERT_EQ(f.view().chunks.size(), 2u);
        EXPECT_EQ(f.view().num_tokens(), 10);
        expect_chunk_eq(f.view().chunks[0], a);
        expect_chunk_eq(f.view().chunks[1], b);
    }
}

TEST(TraceFile, TornLastChunkIsDroppedAndErrorsNameTheProblem) {
    TempDir t;
    std::string path = t.path("x.trace");
    {
        TraceWriter w(path, small_header(false));
        w.write_chunk(fill(5, 0, false));
        w.write_chunk(fill(9, 1, false));
        // no finish(): a crash leaves x.trace.partial
    }
    ASSERT_TRUE(std::filesystem::exists(path + ".partial"));
    std::string bytes = read_bytes(path + ".partial");
    write_bytes(t.path("torn.trace"), bytes.substr(0, bytes.size() - 20));
    TraceFile f = TraceFile::open(t.path("torn.trace"));
    EXPECT_TRUE(f.truncated());
    ASSERT_EQ(f.view().chunks.size(), 1u);
    expect_chunk_eq(f.view().chunks[0], fill(5, 0, false));
    std::string v2 = bytes;
    v2[8] = 9;
    write_bytes(t.path("v.trace"), v2);
    EXPECT_TRUE(throws_error_with([&] { TraceFile::open(t.path("v.trace")); },
                                  {"v.trace", "version: expected 1, found 9"}));
    write_bytes(t.path("j.trace"), "hello");
    EXPECT_TRUE(throws_error_with([&] { TraceFile::open(t.path("j.trace")); }, {"magic"}));
    std::string bad_lang = read_bytes(path + ".partial");
    size_t data0 = 64 + (header_json(small_header(false)).size() + 63) / 64 * 64;
    bad_lang[data0 + 16] = 7;  // first token's language index
    write_bytes(t.path("b.trace"), bad_lang);
    EXPECT_TRUE(throws_error_with([&] { TraceFile::open(t.path("b.trace")); },
                                  {"language index below 2, found 7"}));
}

TEST(TraceFile, ExpertIdsMustBeBelowNumExperts) {
    TempDir t;
    // The writer does not validate ids, so it can produce the hostile file: E = 5 and one id 5
    // in the last layer (the reader must reject it; counts[E] tables would be indexed with it).
    ChunkBuffer c = fill(4, 0, true);
    c.expert[2][3 * 2 + 1] = 5;
    {
        TraceWriter w(t.path("e.trace"), small_header(true));
        w.write_chunk(c);
        w.finish();
    }
    EXPECT_TRUE(throws_error_with([&] { TraceFile::open(t.path("e.trace")); },
                                  {"e.trace", "layer 2 token 3 rank 1",
                                   "expected an expert id below 5 (num_experts), found 5"}));
    // Negative control: the largest valid id, 4, opens.
    c.expert[2][3 * 2 + 1] = 4;
    {
        TraceWriter w(t.path("ok.trace"), small_header(true));
        w.write_chunk(c);
        w.finish();
    }
    EXPECT_EQ(TraceFile::open(t.path("ok.trace")).view().chunks.at(0).experts_at(2, 3, 2)[1], 4);
}

// A prepared directory with two languages of micro-vocabulary documents (ids < 256).
void write_prepared(const std::string& dir) {
    std::filesystem::create_directories(dir);
    nlohmann::json langs = nlohmann::json::object();
    const char* codes[] = {"aaa", "bbb"};
    for (int l = 0; l < 2; ++l) {
        data::ShardMeta meta{{codes[l], "", "Latn", "", "1", ""}, "heldout", "t.json", 1, 256};
        data::ShardWriter w(dir + "/" + data::shard_file_name(codes[l], "heldout", 0), meta);
        for (int d = 0; d < 5; ++d) {
            std::vector<int32_t> ids;
            for (int i = 0; i < 3 + 9 * d; ++i)
                ids.push_back((l * 91 + d * 13 + i * 7) % 255);
            w.add_document(ids, 10 * d);
        }
        w.finish();
        langs[codes[l]] = {{"info", {{"stage", "1"}}}};
    }
    std::ofstream(dir + "/stats.json")
        << nlohmann::json{{"eos_id", 255}, {"languages", langs}}.dump();
}

TEST(Capture, RecordsWhatTheForwardRoutes) {
    TempDir t;
    write_prepared(t.path("data"));
    model::OlmoeWeights w(model::preset("micro"));
    model::init_weights(w, 11);
    CaptureOptions o;
    o.batch = 3;
    o.seq = 16;  // documents of up to 39 tokens span several windows
    o.logits = true;
    CaptureResult res = capture_trace(w, t.path("model"), t.path("data"), o, t.path("a.trace"));
    TraceFile f = TraceFile::open(t.path("a.trace"));
    const TraceView& v = f.view();
    EXPECT_EQ(res.tokens, v.num_tokens());
    EXPECT_EQ(res.documents, 10);
    EXPECT_EQ(v.header.label, "model");
    EXPECT_EQ(v.header.num_documents, 10);
    // Gather per (lang, doc) and compare with a direct forward of each window alone.
    int64_t compared = 0, expert_mismatch = 0;
    double max_dw = 0, max_dl = 0;
    const int K = v.header.top_k, E = v.header.num_experts, R = v.header.num_layers();
    for (const auto& c : v.chunks) {
        int64_t i = 0;
        while (i < c.n) {
            // One window: same doc, consecutive positions starting at a multiple of 16.
            int64_t j = i + 1;
            while (j < c.n && c.doc[j] == c.doc[i] && c.position[j] == c.position[j - 1] + 1 &&
                   c.position[j] % 16 != 0)
                ++j;
            const int64_t n = j - i;
            std::vector<int32_t> ids(c.token + i, c.token + j);
            struct Rec : model::ForwardObserver {
                std::vector<std::vector<int32_t>> idx;
                std::vector<std::vector<float>> wt, lg;
                void on_router(int,
                               int64_t T,
                               int64_t E_,
                               int64_t K_,
                               const float* logits,
                               const float*,
                               const int32_t* ti,
                               const float* tw,
                               const float*) override {
                    idx.emplace_back(ti, ti + T * K_);
                    wt.emplace_back(tw, tw + T * K_);
                    lg.emplace_back(logits, logits + T * E_);
                }
            } rec;
            model::Activations a;
            model::allocate_activations(a, w.config, 1, n, false);
            model::olmoe_forward(a, w, ids.data(), nullptr, 1, n, &rec);
            EXPECT_EQ(c.passage[i], 10 * static_cast<int32_t>(c.doc[i] % 5));
            for (int r = 0; r < R; ++r)
                for (int64_t t2 = 0; t2 < n; ++t2) {
                    for (int k = 0; k < K; ++k) {
                        expert_mismatch += c.experts_at(r, i + t2, K)[k] != rec.idx[r][t2 * K + k];
                        max_dw = std::max<double>(max_dw, std::abs(c.weights_at(r, i + t2, K)[k] -
                                                                   rec.wt[r][t2 * K + k]));
                    }
                    for (int e = 0; e < E; ++e)
                        max_dl = std::max<double>(
                            max_dl,
                            std::abs(c.logits[(r * c.n + i + t2) * E + e] - rec.lg[r][t2 * E + e]));
                    ++compared;
                }
            i = j;
        }
    }
    EXPECT_EQ(compared, v.num_tokens() * R);
    EXPECT_EQ(expert_mismatch, 0);
    EXPECT_LT(max_dw, 1e-5);
    EXPECT_LT(max_dl, 1e-4);
    // --max-tokens caps each language; --languages filters.
    o.max_tokens = 20;
    o.languages = {"bbb"};
    o.logits = false;
    res = capture_trace(w, t.path("model"), t.path("data"), o, t.path("b.trace"));
    EXPECT_EQ(res.tokens, 20);
    TraceFile fb = TraceFile::open(t.path("b.trace"));
    EXPECT_EQ(fb.header().languages.size(), 1u);
    EXPECT_EQ(fb.header().languages[0].code, "bbb");
    o.languages = {"zzz"};
    EXPECT_TRUE(throws_error_with(
        [&] { capture_trace(w, t.path("model"), t.path("data"), o, t.path("c.trace")); },
        {"\"zzz\""}));
}

}  // namespace
}  // namespace polymoe::trace
