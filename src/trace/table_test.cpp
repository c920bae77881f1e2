// Routing-table tests: trace -> .npz -> trace is lossless (every column, header, logits, stored
// and compressed); the analysis of an imported table equals the analysis of the native trace
// (whole JSON, bootstrap and permutations included); numpy-written tables of every dtype import
// to the same trace; defaults for absent keys; invalid tables are rejected naming the key.
#include "trace/table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/analysis.h"
#include "analysis/synthetic.h"
#include "io/io_test_util.h"
#include "io/npz.h"
#include "trace/trace_file.h"

namespace polymoe::trace {
namespace {

using io::testing_util::TempDir;
using io::testing_util::throws_error_with;
using nlohmann::json;

const std::string kDir = std::string(POLYMOE_SOURCE_DIR) + "/tests/fixtures/npz/";

// Writes a view to a trace file, chunk by chunk.
void write_trace(const std::string& path, const TraceView& v) {
    TraceWriter w(path, v.header);
    const int R = v.header.num_layers(), K = v.header.top_k, E = v.header.num_experts;
    for (const TraceChunk& c : v.chunks) {
        ChunkBuffer b;
        b.reset(R, K, E, v.header.has_logits);
        const auto n = static_cast<size_t>(c.n);
        b.lang.assign(c.lang, c.lang + n);
        b.doc.assign(c.doc, c.doc + n);
        b.passage.assign(c.passage, c.passage + n);
        b.position.assign(c.position, c.position + n);
        b.token.assign(c.token, c.token + n);
        for (int r = 0; r < R; ++r) {
            b.expert[r].assign(c.expert + r * n * K, c.expert + (r + 1) * n * K);
            b.weight[r].assign(c.weight + r * n * K, c.weight + (r + 1) * n * K);
            if (c.logits) b.logit[r].assign(c.logits + r * n * E, c.logits + (r + 1) * n * E);
        }
        w.write_chunk(b);
    }
    w.finish();
}

// Token-major copy of a view's columns, independent of chunking.
struct Flat {
    std::vector<uint32_t> lang, doc, position, token;
    std::vector<int32_t> passage;
    std::vector<uint16_t> expert;  // [T][R][K]
    std::vector<float> weight;     // [T][R][K]
    std::vector<float> logits;     // [T][R][E]
    bool operator==(const Flat&) const = default;
};

Flat flatten(const TraceView& v) {
    Flat f;
    const int R = v.header.num_layers(), K = v.header.top_k, E = v.header.num_experts;
    for (const TraceChunk& c : v.chunks)
        for (int64_t i = 0; i < c.n; ++i) {
            f.lang.push_back(c.lang[i]);
            f.doc.push_back(c.doc[i]);
            f.passage.push_back(c.passage[i]);
            f.position.push_back(c.position[i]);
            f.token.push_back(c.token[i]);
            for (int r = 0; r < R; ++r) {
                for (int k = 0; k < K; ++k) {
                    f.expert.push_back(c.experts_at(r, i, K)[k]);
                    f.weight.push_back(c.weights_at(r, i, K)[k]);
                }
                for (int e = 0; c.logits && e < E; ++e)
                    f.logits.push_back(c.logits[(r * c.n + i) * E + e]);
            }
        }
    return f;
}

analysis::SyntheticSpec spec() {
    analysis::SyntheticSpec s;
    s.E = 8;
    s.K = 2;
    s.R = 3;
    s.layers = {0, 5, 11};
    s.languages = {{"spa", "Spanish", "Latn", "Romance", "1", ""},
                   {"glg", "Galician", "Latn", "Romance", "2", "spa"},
                   {"rus", "Russian", "Cyrl", "Slavic", "1", ""}};
    s.nL = 3;
    s.docs_per_lang = 8;
    s.tokens_per_doc = 30;
    s.separation = 0.8;
    s.parallel = true;
    s.chunk_tokens = 97;  // odd chunk sizes: import re-chunks differently
    return s;
}

TEST(Table, TraceToNpzToTraceIsLossless) {
    TempDir dir;
    const analysis::OwnedTrace t = analysis::make_synthetic_trace(spec());
    write_trace(dir.path("a.trace"), t.view());
    for (bool compress : {false, true}) {
        const std::string npz = dir.path(compress ? "c.npz" : "s.npz");
        const std::string back = dir.path(compress ? "c.trace" : "s.trace");
        const TableExportResult ex = export_table(dir.path("a.trace"), npz, compress);
        EXPECT_EQ(ex.tokens, t.view().num_tokens());
        const TableImportResult im = import_table(npz, back, 50);
        EXPECT_TRUE(im.notes.empty()) << im.notes[0];
        EXPECT_EQ(im.tokens, ex.tokens);
        EXPECT_EQ(im.documents, 24);
        const TraceFile a = TraceFile::open(dir.path("a.trace")), b = TraceFile::open(back);
        EXPECT_EQ(header_json(a.header()), header_json(b.header()));
        EXPECT_EQ(a.header().num_experts, b.header().num_experts);
        EXPECT_EQ(a.header().top_k, b.header().top_k);
        EXPECT_TRUE(flatten(a.view()) == flatten(b.view()));
        EXPECT_GT(b.view().chunks.size(), a.view().chunks.size());
    }
}

TEST(Table, LogitsAndUnorderedTopkRoundTrip) {
    TempDir dir;
    TraceHeader h;
    h.num_experts = 4;
    h.top_k = 2;
    h.layers = {1, 3};
    h.languages = {{"a", "A", "", "", "", ""}, {"b", "B", "", "", "", ""}};
    h.has_logits = true;
    h.rank_ordered = false;
    h.label = "x";
    ChunkBuffer c;
    c.reset(2, 2, 4, true);
    for (int i = 0; i < 5; ++i) {
        c.lang.push_back(static_cast<uint16_t>(i / 3));
        c.doc.push_back(static_cast<uint32_t>(i / 3));
        c.passage.push_back(-1);
        c.position.push_back(static_cast<uint32_t>(i % 3));
        c.token.push_back(static_cast<uint32_t>(70000 + i));
        for (int r = 0; r < 2; ++r) {
            c.expert[r].insert(c.expert[r].end(), {static_cast<uint16_t>((i + r) % 4),
                                                   static_cast<uint16_t>((i + r + 1) % 4)});
            c.weight[r].insert(c.weight[r].end(), {0.25f * i, 0.125f * r});
            for (int e = 0; e < 4; ++e)
                c.logit[r].push_back(-1.5f * e + static_cast<float>(i) - 3.0f * r);
        }
    }
    {
        TraceWriter w(dir.path("l.trace"), h);
        w.write_chunk(c);
        w.finish();
    }
    export_table(dir.path("l.trace"), dir.path("l.npz"));
    import_table(dir.path("l.npz"), dir.path("back.trace"));
    const TraceFile a = TraceFile::open(dir.path("l.trace")),
                    b = TraceFile::open(dir.path("back.trace"));
    EXPECT_FALSE(b.header().rank_ordered);
    EXPECT_TRUE(b.header().has_logits);
    EXPECT_EQ(header_json(a.header()), header_json(b.header()));
    EXPECT_TRUE(flatten(a.view()) == flatten(b.view()));
}

// Largest |a - b| over all numbers of two JSON documents; any structural or non-numeric
// difference counts as infinity.
double max_number_diff(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) return std::abs(a.get<double>() - b.get<double>());
    if (a.type() != b.type() || a.size() != b.size()) return INFINITY;
    double m = 0;
    if (a.is_object()) {
        for (auto it = a.begin(); it != a.end(); ++it)
            m = std::max(m, b.contains(it.key()) ? max_number_diff(*it, b[it.key()]) : INFINITY);
    } else if (a.is_array()) {
        for (size_t i = 0; i < a.size(); ++i)
            m = std::max(m, max_number_diff(a[i], b[i]));
    } else if (a != b) {
        m = INFINITY;
    }
    return m;
}

TEST(Table, AnalysisOfImportedTableEqualsAnalysisOfTrace) {
    TempDir dir;
    const analysis::OwnedTrace t = analysis::make_synthetic_trace(spec());
    write_trace(dir.path("a.trace"), t.view());
    export_table(dir.path("a.trace"), dir.path("a.npz"), true);
    analysis::AnalysisOptions o;
    o.bootstrap = 40;
    o.permutations = 40;
    o.split_half_repeats = 5;
    const TraceFile a = TraceFile::open(dir.path("a.trace"));
    const json ja = analysis::analyze({{"", &a.view()}}, o);
    // Same chunking as the native trace (97 tokens): bit-identical JSON, CIs and nulls included.
    import_table(dir.path("a.npz"), dir.path("b.trace"), 97);
    const TraceFile b = TraceFile::open(dir.path("b.trace"));
    EXPECT_EQ(json::diff(ja, analysis::analyze({{"", &b.view()}}, o)).size(), 0u);
    // Other chunking: the blocked weight sums restart at chunk boundaries, so weight-based
    // numbers may differ in the last bits; everything else is identical.
    import_table(dir.path("a.npz"), dir.path("c.trace"), 64);
    const TraceFile c = TraceFile::open(dir.path("c.trace"));
    const json jc = analysis::analyze({{"", &c.view()}}, o);
    EXPECT_LT(max_number_diff(ja, jc), 1e-15);
    for (size_t r = 0; r < 3; ++r)
        for (const char* k : {"bits", "nats", "normalized", "permutation", "split_half_bits"})
            EXPECT_EQ(ja["traces"][0]["jsd"]["layers"][r][k],
                      jc["traces"][0]["jsd"]["layers"][r][k])
                << "counts-based " << k << " must be bit-identical";
    // Negative control: a different routing draw of the same tokens changes the analysis.
    analysis::SyntheticSpec s2 = spec();
    s2.routing_seed = 2;
    const analysis::OwnedTrace t2 = analysis::make_synthetic_trace(s2);
    const TraceView v2 = t2.view();
    const json jd = analysis::analyze({{"", &v2}}, o);
    EXPECT_GT(max_number_diff(ja["traces"][0]["jsd"], jd["traces"][0]["jsd"]), 1e-3);
}

TEST(Table, NumpyTablesOfEveryDtypeImportToTheSameTrace) {
    TempDir dir;
    std::ifstream ef(kDir + "expected.json");
    const json want = json::parse(ef);
    std::string reference;
    for (std::string name :
         {"uint8_stored", "uint8_compressed", "int16_stored", "int16_compressed", "int32_stored",
          "int32_compressed", "int64_stored", "int64_compressed", "float32_stored",
          "float32_compressed", "float64_stored", "float64_compressed", "bigendian"}) {
        SCOPED_TRACE(name);
        const std::string out = dir.path(name + ".trace");
        const TableImportResult r = import_table(kDir + "table_" + name + ".npz", out, 5);
        EXPECT_EQ(r.tokens, 12);
        EXPECT_EQ(r.documents, 5);
        EXPECT_EQ(r.num_experts, 5);
        const TraceFile f = TraceFile::open(out);
        EXPECT_EQ(f.header().layers, (std::vector<int>{3, 7}));
        EXPECT_EQ(f.header().languages[1].code, "glg");
        const Flat fl = flatten(f.view());
        for (int i = 0; i < 12; ++i) {
            EXPECT_EQ(fl.lang[i], want["lang"][i].get<uint32_t>());
            EXPECT_EQ(fl.doc[i], want["doc"][i].get<uint32_t>());
            EXPECT_EQ(fl.token[i], want["token"][i].get<uint32_t>());
            EXPECT_EQ(fl.passage[i], want["passage"][i].get<int32_t>());
            for (int j = 0; j < 4; ++j) {
                EXPECT_EQ(fl.expert[i * 4 + j], want["topk_ids"][i][j / 2][j % 2].get<int>());
                EXPECT_EQ(fl.weight[i * 4 + j], want["topk_weights"][i][j / 2][j % 2].get<float>());
            }
        }
        std::string cols =
            json({fl.lang, fl.doc, fl.position, fl.token, fl.passage, fl.expert, fl.weight}).dump();
        if (reference.empty()) reference = cols;
        EXPECT_EQ(cols, reference);
    }
}

TEST(Table, AbsentOptionalKeysGetDocumentedDefaults) {
    TempDir dir;
    const TableImportResult r = import_table(kDir + "table_minimal.npz", dir.path("m.trace"));
    EXPECT_EQ(r.documents, 12);  // each token its own document, and said so
    ASSERT_EQ(r.notes.size(), 4u);
    EXPECT_NE(r.notes[2].find("doc absent: each token is its own document"), std::string::npos);
    const TraceFile f = TraceFile::open(dir.path("m.trace"));
    EXPECT_EQ(f.header().layers, (std::vector<int>{0, 1}));
    EXPECT_EQ(f.header().num_experts, 5);  // max id + 1
    EXPECT_NE(f.header().data.find("each token is its own document"), std::string::npos);
    const Flat fl = flatten(f.view());
    for (int i = 0; i < 12; ++i) {
        EXPECT_EQ(fl.doc[i], static_cast<uint32_t>(i));
        EXPECT_EQ(fl.position[i], 0u);
        EXPECT_EQ(fl.passage[i], -1);
    }
    for (float w : fl.weight)
        EXPECT_EQ(w, 0.0f);
}

TEST(Table, InvalidTablesNameTheKey) {
    TempDir dir;
    const std::string out = dir.path("x.trace");
    const std::pair<const char*, std::vector<std::string_view>> cases[] = {
        {"bad_missing_topk", {"topk_ids", "expected it"}},
        {"bad_shape_mismatch", {"topk_ids", "[11, 2, 2]"}},
        {"bad_id_ge_e", {"topk_ids", "below num_experts = 4"}},
        {"bad_duplicate_ids", {"topk_ids", "distinct", "token 5"}},
        {"bad_doc_two_groups", {"'doc'", "one group per document", "document 0"}},
        {"bad_lang_strings", {"'lang'", "integer"}},
        {"bad_fractional_ids", {"topk_ids", "0.5"}},
        {"bad_complex_ids", {"topk_ids", "c8"}},
        {"bad_object_array", {"lang", "object array"}},
        {"bad_huge_shape", {"topk_ids", "1099511627776"}},
        {"bad_overflow_shape", {"topk_ids", "overflow"}},
        {"bad_pickle", {"zip"}},
        {"bad_truncated", {"zip"}},
    };
    for (const auto& [name, parts] : cases) {
        const std::string path = kDir + name + ".npz";
        try {
            import_table(path, out);
            ADD_FAILURE() << name << ": no error";
        } catch (const Error& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find(path), std::string::npos) << msg;
            for (std::string_view p : parts)
                EXPECT_NE(msg.find(p), std::string::npos) << name << ": " << msg;
        }
        EXPECT_FALSE(std::filesystem::exists(out)) << name;
    }
}

}  // namespace
}  // namespace polymoe::trace
