// Tests of the data stage: manifest validation (errors name file and line), readers on every
// format and compression and on bad inputs, the Gopher repetition rules, shard round-trips and
// corruption, prepare (stats, determinism across reruns and thread counts, no-op reruns), and the
// batch loader (policy proportions, determinism, resume, rank disjointness, packing).
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <cmath>
#include <map>
#include <set>

#include "core/parallel.h"
#include "data/filters.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "data/reader.h"
#include "data/shard.h"
#include "io/io_test_util.h"

namespace polymoe::data {
namespace {

using io::testing_util::read_bytes;
using io::testing_util::TempDir;
using io::testing_util::throws_error_with;
using io::testing_util::write_bytes;

std::string gzip(const std::string& s) {
    z_stream z{};
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&z, s.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
    z.avail_in = static_cast<uInt>(s.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

std::string zstd(const std::string& s) {
    std::string out(ZSTD_compressBound(s.size()), '\0');
    size_t n = ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3);
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

std::vector<Document> read_all(const std::string& file, SourceSpec spec = {}) {
    DocumentReader r(spec, file);
    std::vector<Document> docs;
    Document d;
    while (r.next(&d))
        docs.push_back(d);
    return docs;
}

// ---------------------------------------------------------------------------------------------
// Manifest

TEST(Manifest, ParsesLanguagesSourcesAndHeldout) {
    TempDir t;
    write_bytes(t.path("a.jsonl"), "{\"text\": \"hola\", \"p\": 1}\n");
    write_bytes(t.path("b1.txt"), "x\n");
    write_bytes(t.path("b2.txt"), "y\n");
    write_bytes(t.path("m.yaml"),
                "version: 1\nheldout: {passages: [5, 10]}\nprepare: {dedup: false}\n"
                "languages:\n"
                "  spa: {name: Spanish, script: Latn, family: Romance, stage: \"1\",\n"
                "        sources: [{path: a.jsonl, passage_field: p}]}\n"
                "  glg:\n    stage: \"2\"\n    related: spa\n    sources: [\"b*.txt\"]\n");
    Manifest m = load_manifest(t.path("m.yaml"));
    ASSERT_EQ(m.languages.size(), 2u);
    EXPECT_EQ(m.languages[0].info.code, "spa");
    EXPECT_EQ(m.languages[0].info.script, "Latn");
    EXPECT_EQ(m.languages[0].sources[0].passage_field, "p");
    EXPECT_EQ(m.languages[1].info.related, "spa");
    ASSERT_EQ(m.languages[1].sources[0].files.size(), 2u);
    EXPECT_NE(m.languages[1].sources[0].files[0].find("b1.txt"), std::string::npos);
    EXPECT_FALSE(m.dedup);
    EXPECT_TRUE(m.heldout.is_heldout(0, 10));
    EXPECT_FALSE(m.heldout.is_heldout(0, 11));
    EXPECT_FALSE(m.heldout.is_heldout(0, -1));
}

TEST(Manifest, ErrorsNameFileLineAndProblem) {
    TempDir t;
    write_bytes(t.path("a.txt"), "x\n");
    auto expect = [&](const std::string& yaml, std::initializer_list<std::string_view> parts) {
        write_bytes(t.path("m.yaml"), yaml);
        EXPECT_TRUE(throws_error_with([&] { load_manifest(t.path("m.yaml")); }, parts)) << yaml;
    };
    expect("languages:\n  spa:\n    stage: \"1\"\n    colour: red\n    sources: [a.txt]\n",
           {"m.yaml:4", "unknown key \"colour\""});
    expect("languages:\n  spa:\n    stage: \"1\"\n    sources: [missing.txt]\n",
           {"m.yaml:4", "missing.txt", "expected an existing file"});
    expect("languages:\n  spa:\n    stage: \"1\"\n    sources: [\"z*.txt\"]\n",
           {"glob to match files"});
    expect(
        "languages:\n  spa: {stage: \"1\", sources: [a.txt]}\n  spa: {stage: \"1\", sources: "
        "[a.txt]}\n",
        {"m.yaml:3", "duplicate"});
    expect("languages:\n  glg: {stage: \"2\", related: spa, sources: [a.txt]}\n",
           {"related", "\"spa\""});
    expect("languages:\n  spa: {sources: [a.txt]}\n", {"m.yaml:2", "stage"});
    expect(
        "heldout: {passages: [1], fraction: 0.1}\nlanguages:\n  spa: {stage: \"1\", sources: "
        "[a.txt]}\n",
        {"m.yaml:1", "both"});
    expect("version: 2\nlanguages:\n  spa: {stage: \"1\", sources: [a.txt]}\n",
           {"version: expected 1, found 2"});
    expect("languages: [1, 2\n", {"m.yaml", "valid YAML"});
    write_bytes(t.path("a.csv"), "x");
    expect("languages:\n  spa: {stage: \"1\", sources: [a.csv]}\n", {".txt or .jsonl"});
    EXPECT_TRUE(throws_error_with([&] { load_manifest(t.path("nope.yaml")); }, {"nope.yaml"}));
}

TEST(Manifest, FractionRuleHoldsOutAboutThatShare) {
    HeldoutRule r;
    r.fraction = 0.1;
    int held = 0;
    for (int i = 0; i < 20000; ++i)
        held += r.is_heldout(i, -1);
    EXPECT_NEAR(held / 20000.0, 0.1, 0.01);
}

// ---------------------------------------------------------------------------------------------
// Readers

TEST(Reader, TextBlocksNormaliseLineEndings) {
    TempDir t;
    write_bytes(t.path("a.txt"), "one\r\nline two\r\n\r\n\n  \nsecond\rdoc\r\rthird");
    auto docs = read_all(t.path("a.txt"));
    ASSERT_EQ(docs.size(), 3u);
    EXPECT_EQ(docs[0].text, "one\nline two");
    EXPECT_EQ(docs[0].line, 1);
    EXPECT_EQ(docs[1].text, "second\ndoc");
    EXPECT_EQ(docs[1].line, 6);
    EXPECT_EQ(docs[2].text, "third");
    SourceSpec whole;
    whole.split = TextSplit::kFile;
    auto one = read_all(t.path("a.txt"), whole);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].text, "one\nline two\n\n\n  \nsecond\ndoc\n\nthird");
}

TEST(Reader, EveryCompressionGivesTheSameDocuments) {
    TempDir t;
    std::string jsonl;
    for (int i = 0; i < 3000; ++i)
        jsonl += "{\"text\": \"doc " + std::to_string(i) +
                 " ünïcödé\\r\\nline\", \"id\": " + std::to_string(i) + "}\n";
    write_bytes(t.path("a.jsonl"), jsonl);
    write_bytes(t.path("a.jsonl.gz"), gzip(jsonl));
    write_bytes(t.path("a.jsonl.zst"), zstd(jsonl));
    write_bytes(t.path("b.jsonl.gz"), gzip(jsonl.substr(0, 100)) + gzip(jsonl.substr(100)));
    SourceSpec spec;
    spec.passage_field = "id";
    auto plain = read_all(t.path("a.jsonl"), spec);
    ASSERT_EQ(plain.size(), 3000u);
    EXPECT_EQ(plain[7].text, "doc 7 ünïcödé\nline");
    EXPECT_EQ(plain[7].passage, 7);
    for (const char* f : {"a.jsonl.gz", "a.jsonl.zst", "b.jsonl.gz"}) {
        auto d = read_all(t.path(f), spec);
        ASSERT_EQ(d.size(), plain.size()) << f;
        for (size_t i = 0; i < d.size(); ++i) {
            EXPECT_EQ(d[i].text, plain[i].text) << f;
            EXPECT_EQ(d[i].passage, plain[i].passage) << f;
        }
    }
    write_bytes(t.path("c.txt.zst"), zstd("alpha\n\nbeta\n"));
    EXPECT_EQ(read_all(t.path("c.txt.zst")).size(), 2u);
}

TEST(Reader, ContentProblemsAreClassifiedNotFatal) {
    TempDir t;
    write_bytes(t.path("a.txt"),
                std::string("good\n\nbad \xff\xfe utf8\n\nnul\0byte\n\nover\xc0\xaflong\n", 40));
    auto d = read_all(t.path("a.txt"));
    ASSERT_EQ(d.size(), 4u);
    EXPECT_EQ(d[0].problem, DocProblem::kNone);
    EXPECT_EQ(d[1].problem, DocProblem::kInvalidUtf8);
    EXPECT_EQ(d[2].problem, DocProblem::kNulByte);
    EXPECT_EQ(d[3].problem, DocProblem::kInvalidUtf8);
    write_bytes(t.path("e.txt"), "");
    EXPECT_TRUE(read_all(t.path("e.txt")).empty());
    SourceSpec whole;
    whole.split = TextSplit::kFile;
    auto e = read_all(t.path("e.txt"), whole);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].problem, DocProblem::kEmpty);
    write_bytes(t.path("b.jsonl"), "{\"text\": \"ok\"}\n{\"text\": \"   \"}\n\xff\n");
    auto j = read_all(t.path("b.jsonl"));
    ASSERT_EQ(j.size(), 3u);
    EXPECT_EQ(j[1].problem, DocProblem::kEmpty);
    EXPECT_EQ(j[2].problem, DocProblem::kInvalidUtf8);
}

TEST(Reader, FiftyMegabyteSingleLine) {
    TempDir t;
    std::string big(50u << 20, 'a');
    for (size_t i = 97; i < big.size(); i += 97)
        big[i] = ' ';
    write_bytes(t.path("big.txt.zst"), zstd(big));
    auto d = read_all(t.path("big.txt.zst"));
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].text.size(), big.size());
    EXPECT_EQ(d[0].problem, DocProblem::kNone);
}

TEST(Reader, LinesAndDocumentsAboveTheLimitAreErrors) {
    TempDir t;
    // A reader limited to 1000 bytes: a 999-byte line passes, a 1001-byte line (split across
    // no buffer boundary) and a 3-line block of 400 bytes each fail, naming file and line.
    write_bytes(t.path("ok.txt"), std::string(999, 'a') + "\n");
    {
        const SourceSpec blocks;
        DocumentReader r(blocks, t.path("ok.txt"), 1000);
        Document d;
        ASSERT_TRUE(r.next(&d));
        EXPECT_EQ(d.text.size(), 999u);
    }
    write_bytes(t.path("long.txt"), "short\n\n" + std::string(1001, 'a') + "\n");
    auto read_limited = [&](const std::string& f, SourceSpec spec) {
        DocumentReader r(spec, f, 1000);
        Document d;
        while (r.next(&d)) {
        }
    };
    EXPECT_TRUE(throws_error_with([&] { read_limited(t.path("long.txt"), {}); },
                                  {"long.txt:3", "lines of at most 1000 bytes"}));
    const std::string line(400, 'b');
    write_bytes(t.path("block.txt"), line + "\n" + line + "\n" + line + "\n");
    EXPECT_TRUE(throws_error_with([&] { read_limited(t.path("block.txt"), {}); },
                                  {"block.txt:1", "documents of at most 1000 bytes"}));
    SourceSpec whole;
    whole.split = TextSplit::kFile;
    EXPECT_TRUE(throws_error_with([&] { read_limited(t.path("block.txt"), whole); },
                                  {"block.txt:1", "documents of at most 1000 bytes"}));
    write_bytes(t.path("long.jsonl"), "{\"text\": \"" + std::string(1100, 'c') + "\"}\n");
    EXPECT_TRUE(throws_error_with([&] { read_limited(t.path("long.jsonl"), {}); },
                                  {"long.jsonl:1", "lines of at most 1000 bytes"}));
}

TEST(Reader, CarriageReturnsInJsonStringsInLinearTime) {
    TempDir t;
    // 2 million "\r\n" pairs (escaped in JSON) plus lone "\r"s: erasing each '\r' in place
    // would move ~4 MB per pair (hours); the one-pass rewrite takes milliseconds.
    std::string body;
    for (int i = 0; i < 2000000; ++i)
        body += "\\r\\n";
    body += "x\\ry";
    write_bytes(t.path("crlf.jsonl"), "{\"text\": \"" + body + "\"}\n");
    const auto d = read_all(t.path("crlf.jsonl"));
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].text, std::string(2000000, '\n') + "x\ny");
}

TEST(Reader, StructuralErrorsNameFileAndLine) {
    TempDir t;
    write_bytes(t.path("a.jsonl"), "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n");
    EXPECT_TRUE(throws_error_with([&] { read_all(t.path("a.jsonl")); },
                                  {"a.jsonl:2", "string field \"text\"", "none"}));
    write_bytes(t.path("b.jsonl"), "{\"text\": \"ok\"}\n{not json\n");
    EXPECT_TRUE(
        throws_error_with([&] { read_all(t.path("b.jsonl")); }, {"b.jsonl:2", "invalid JSON"}));
    write_bytes(t.path("c.jsonl"), "[1, 2]\n");
    EXPECT_TRUE(
        throws_error_with([&] { read_all(t.path("c.jsonl")); }, {"c.jsonl:1", "JSON object"}));
    SourceSpec p;
    p.passage_field = "n";
    write_bytes(t.path("d.jsonl"), "{\"text\": \"ok\", \"n\": \"five\"}\n");
    EXPECT_TRUE(throws_error_with([&] { read_all(t.path("d.jsonl"), p); },
                                  {"d.jsonl:1", "integer field \"n\"", "string"}));
    std::string text(200000, 'x');
    std::string z = zstd(text), g = gzip(text);
    write_bytes(t.path("t.txt.zst"), z.substr(0, z.size() / 2));
    EXPECT_TRUE(
        throws_error_with([&] { read_all(t.path("t.txt.zst")); }, {"t.txt.zst", "truncated"}));
    write_bytes(t.path("t.txt.gz"), g.substr(0, g.size() - 6));
    EXPECT_TRUE(
        throws_error_with([&] { read_all(t.path("t.txt.gz")); }, {"t.txt.gz", "truncated"}));
    write_bytes(t.path("x.txt.zst"), "this is not zstd at all");
    EXPECT_TRUE(throws_error_with([&] { read_all(t.path("x.txt.zst")); }, {"x.txt.zst", "zstd"}));
    EXPECT_TRUE(
        throws_error_with([&] { read_all(t.path("none.txt")); }, {"none.txt", "cannot open"}));
}

// ---------------------------------------------------------------------------------------------
// Filters

TEST(Filters, GopherRepetitionRules) {
    const std::string prose =
        "The quick brown fox jumps over the lazy dog while the farmer sleeps under an old oak "
        "tree, dreaming of rain that never comes to the valley where his grandfather once "
        "planted wheat and barley in long straight rows.";
    EXPECT_EQ(repetition_violation(prose), nullptr);
    std::string spam;
    for (int i = 0; i < 20; ++i)
        spam += "buy cheap watches now ";
    EXPECT_NE(repetition_violation(spam), nullptr);
    std::string lines;
    for (int i = 0; i < 5; ++i)
        lines += "same line here\nunique line " + std::to_string(i) + "\n";
    EXPECT_STREQ(repetition_violation(lines), "dup_line_frac");
    // Negative control: doubling the prose repeats every 5..10-gram.
    EXPECT_STREQ(repetition_violation(prose + " " + prose), "dup_ngram_char_frac");
}

TEST(Filters, TextHashSeparatesNearDuplicates) {
    EXPECT_EQ(text_hash("abc"), text_hash("abc"));
    EXPECT_NE(text_hash("abc"), text_hash("abd"));
    EXPECT_NE(text_hash(""), text_hash(std::string(1, '\0')));
}

// ---------------------------------------------------------------------------------------------
// Shards

ShardMeta test_meta(const std::string& code, const std::string& split) {
    return {{code, "Test", "Latn", "F", "1", ""}, split, "tok.json", 0x1234, 100};
}

TEST(Shard, RoundTripAndCorruption) {
    TempDir t;
    std::string path = t.path(shard_file_name("spa", "train", 0));
    {
        ShardWriter w(path, test_meta("spa", "train"));
        w.add_document(std::vector<int32_t>{1, 2, 3}, 5);
        w.add_document(std::vector<int32_t>{}, -1);
        w.add_document(std::vector<int32_t>{99}, 7);
        w.finish();
    }
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    Shard s = Shard::open(path);
    EXPECT_EQ(s.num_documents(), 3);
    EXPECT_EQ(s.num_tokens(), 4);
    EXPECT_EQ(s.meta().language.code, "spa");
    EXPECT_EQ(s.meta().tokenizer_hash, 0x1234u);
    EXPECT_EQ(std::vector<uint32_t>(s.document(0).begin(), s.document(0).end()),
              (std::vector<uint32_t>{1, 2, 3}));
    EXPECT_TRUE(s.document(1).empty());
    EXPECT_EQ(s.document(2)[0], 99u);
    EXPECT_EQ(s.passage(0), 5);
    EXPECT_EQ(s.passage(1), -1);
    std::string bytes = read_bytes(path);
    write_bytes(t.path("cut.shard"), bytes.substr(0, bytes.size() - 8));
    EXPECT_TRUE(throws_error_with([&] { Shard::open(t.path("cut.shard")); },
                                  {"cut.shard", "truncated or corrupt"}));
    std::string v2 = bytes;
    v2[8] = 2;
    write_bytes(t.path("v2.shard"), v2);
    EXPECT_TRUE(throws_error_with([&] { Shard::open(t.path("v2.shard")); },
                                  {"v2.shard", "version: expected 1, found 2"}));
    write_bytes(t.path("junk.shard"), "not a shard");
    EXPECT_TRUE(throws_error_with([&] { Shard::open(t.path("junk.shard")); }, {"magic"}));
    // An unfinished writer leaves no file behind under either name.
    {
        ShardWriter w(t.path("x.train.00000.shard"), test_meta("x", "train"));
        w.add_document(std::vector<int32_t>{1}, -1);
    }
    EXPECT_FALSE(std::filesystem::exists(t.path("x.train.00000.shard")));
    EXPECT_FALSE(std::filesystem::exists(t.path("x.train.00000.shard.tmp")));
}

// ---------------------------------------------------------------------------------------------
// prepare

struct Corpus {
    TempDir t;
    std::string manifest;
    Corpus() {
        std::string a, b;
        for (int i = 0; i < 40; ++i) {
            a += "{\"text\": \"Artículo " + std::to_string(i) +
                 ". Toda persona tiene derecho a la educación número " + std::to_string(i * 7) +
                 ".\", \"passage\": " + std::to_string(i) + "}\n";
            b += "Статья " + std::to_string(i) + ". Каждый человек имеет право на образование " +
                 std::to_string(i * 3) + ".\n\n";
        }
        a += "{\"text\": \"Artículo 1. Toda persona tiene derecho a la educación número 7.\", "
             "\"passage\": 1}\n";  // exact duplicate of passage 1
        a += "{\"text\": \"\", \"passage\": 99}\n";
        b += "bad \xff byte\n\n";
        write_bytes(t.path("spa.jsonl"), a);
        write_bytes(t.path("rus.txt.zst"), zstd(b));
        manifest = t.path("m.yaml");
        write_bytes(manifest,
                    "heldout: {passages: [5, 10]}\nlanguages:\n"
                    "  spa: {stage: \"1\", script: Latn, sources: [{path: spa.jsonl, "
                    "passage_field: passage}]}\n"
                    "  rus: {stage: \"1\", script: Cyrl, sources: [rus.txt.zst]}\n");
    }
};

TEST(Prepare, FilesystemErrorsArePolymoeErrorsNamingThePath) {
    // A path component over NAME_MAX (255): std::filesystem's throwing queries raise
    // filesystem_error for it (ENAMETOOLONG), which works the same for root, unlike permissions.
    TempDir t;
    const std::string dir = t.path(std::string(300, 'n'));
    EXPECT_TRUE(throws_error_with([&] { read_prepared_stats(dir); },
                                  {std::string(300, 'n') + "/stats.json", "cannot inspect"}));
}

TEST(Prepare, WritesShardsStatsAndIsDeterministic) {
    Corpus c;
    Manifest m = load_manifest(c.manifest);
    auto tok = tokenizer::Tokenizer::from_file(tokenizer::default_tokenizer_path());
    PrepareOptions o;
    o.out_dir = c.t.path("out");
    o.tokenizer_path = tokenizer::default_tokenizer_path();
    o.batch_bytes = 500;  // many batches
    PrepareResult r = prepare(m, tok, o);
    ASSERT_FALSE(r.up_to_date);
    const auto& spa = r.stats["languages"]["spa"];
    EXPECT_EQ(spa["heldout"]["documents"], 2);
    EXPECT_EQ(spa["train"]["documents"], 38);
    EXPECT_EQ(spa["dropped"]["duplicate"], 1);
    EXPECT_EQ(spa["dropped"]["empty"], 1);
    EXPECT_EQ(r.stats["languages"]["rus"]["dropped"]["invalid_utf8"], 1);
    EXPECT_EQ(r.stats["languages"]["rus"]["train"]["documents"], 40);
    EXPECT_EQ(r.stats["languages"]["rus"]["heldout"]["documents"], 0);
    ShardSet held = ShardSet::open(o.out_dir, "spa", "heldout");
    ASSERT_EQ(held.num_documents(), 2);
    EXPECT_EQ(held.passage(0), 5);
    EXPECT_EQ(held.passage(1), 10);
    auto ids = tok.encode("Artículo 5. Toda persona tiene derecho a la educación número 35.").ids;
    auto d = held.document(0);
    EXPECT_EQ(std::vector<int32_t>(d.begin(), d.end()), ids);
    int64_t total = 0;
    ShardSet train = ShardSet::open(o.out_dir, "spa", "train");
    for (int64_t i = 0; i < train.num_documents(); ++i)
        total += static_cast<int64_t>(train.document(i).size());
    EXPECT_EQ(spa["train"]["tokens"], total);
    double ov = r.stats["vocab_overlap"]["matrix"]["spa"]["rus"];
    EXPECT_GT(ov, 0.0);  // digits and punctuation are shared
    EXPECT_LT(ov, 0.9);
    EXPECT_EQ(r.stats["vocab_overlap"]["matrix"]["spa"]["spa"], 1.0);

    // Rerun: no-op. Forced rerun with another thread count: identical bytes.
    std::string stats1 = read_bytes(o.out_dir + "/stats.json");
    std::string shard1 = read_bytes(o.out_dir + "/" + shard_file_name("rus", "train", 0));
    EXPECT_TRUE(prepare(m, tok, o).up_to_date);
    set_num_threads(1);
    o.force = true;
    EXPECT_FALSE(prepare(m, tok, o).up_to_date);
    set_num_threads(0);
    EXPECT_EQ(read_bytes(o.out_dir + "/stats.json"), stats1);
    EXPECT_EQ(read_bytes(o.out_dir + "/" + shard_file_name("rus", "train", 0)), shard1);
    // Small shards rotate; the set reads back the same documents.
    o.max_shard_tokens = 50;
    prepare(m, tok, o);
    EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/" + shard_file_name("spa", "train", 3)));
    ShardSet many = ShardSet::open(o.out_dir, "spa", "train");
    ASSERT_EQ(many.num_documents(), train.num_documents());
}

// ---------------------------------------------------------------------------------------------
// Loader

// Synthetic prepared languages: language l has `docs` documents of length 1 + (d % 7), each
// token = 1000·l + d (so every token names its document).
struct Synth {
    TempDir t;
    std::vector<ShardSet> sets;
    Synth(const std::vector<int>& docs) {
        for (size_t l = 0; l < docs.size(); ++l) {
            std::string code = "l" + std::to_string(l);
            ShardWriter w(t.path(shard_file_name(code, "train", 0)), test_meta(code, "train"));
            for (int d = 0; d < docs[l]; ++d)
                w.add_document(std::vector<int32_t>(static_cast<size_t>(1 + d % 7),
                                                    static_cast<int32_t>(1000 * l + d)),
                               -1);
            w.finish();
            sets.push_back(ShardSet::open(t.path(), code, "train"));
        }
    }
    std::vector<LoaderLanguage> langs(std::vector<bool> replay = {}) const {
        std::vector<LoaderLanguage> v;
        for (size_t l = 0; l < sets.size(); ++l)
            v.push_back({"l" + std::to_string(l), &sets[l], !replay.empty() && replay[l]});
        return v;
    }
};

TEST(Loader, PolicyProbabilitiesMatchClosedForms) {
    std::vector<int64_t> n = {100, 400, 1600};
    std::vector<bool> no(3, false);
    MixtureOptions o;
    o.policy = MixPolicy::kUniform;
    auto p = mixture_probabilities(n, no, o);
    for (double x : p)
        EXPECT_NEAR(x, 1.0 / 3, 1e-12);
    o.policy = MixPolicy::kProportional;
    p = mixture_probabilities(n, no, o);
    EXPECT_NEAR(p[0], 100.0 / 2100, 1e-12);
    o.policy = MixPolicy::kTemperature;
    o.temperature = 2;  // sqrt: 10, 20, 40
    p = mixture_probabilities(n, no, o);
    EXPECT_NEAR(p[0], 10.0 / 70, 1e-12);
    EXPECT_NEAR(p[2], 40.0 / 70, 1e-12);
    // UniMax, budget 3000, cap 2 epochs (200, 800, 3200 tokens): l0 gets min(1000, 200), l1
    // min(2800/2, 800), l2 the remaining 2000.
    o.policy = MixPolicy::kUniMax;
    o.max_epochs = 2;
    o.budget_tokens = 3000;
    p = mixture_probabilities(n, no, o);
    EXPECT_NEAR(p[0], 200.0 / 3000, 1e-12);
    EXPECT_NEAR(p[1], 800.0 / 3000, 1e-12);
    EXPECT_NEAR(p[2], 2000.0 / 3000, 1e-12);
    // Replay: 20% to the replay group, uniform within each group.
    o = {};
    o.policy = MixPolicy::kUniform;
    o.replay = 0.2;
    p = mixture_probabilities(n, {false, true, true}, o);
    EXPECT_NEAR(p[0], 0.8, 1e-12);
    EXPECT_NEAR(p[1], 0.1, 1e-12);
    EXPECT_THROW(mixture_probabilities(n, no, MixtureOptions{MixPolicy::kUniMax, 1, 0, 0, 0}),
                 UsageError);
}

TEST(Loader, DeliveredMixtureFollowsThePolicy) {
    Synth s({50, 200, 800});
    for (MixPolicy pol : {MixPolicy::kUniform, MixPolicy::kProportional, MixPolicy::kTemperature}) {
        MixtureOptions o;
        o.policy = pol;
        o.temperature = 3;
        BatchLoader ld(s.langs(), o, 8, 16, 0, 42);
        std::vector<int32_t> buf(8 * 16);
        std::vector<int> rows;
        std::vector<int64_t> count(3, 0);
        const int kBatches = 1000;
        for (int i = 0; i < kBatches; ++i) {
            ld.next(buf, &rows);
            for (int r : rows)
                count[static_cast<size_t>(r)]++;
        }
        for (size_t l = 0; l < 3; ++l) {
            double p = ld.probabilities()[l], n = 8.0 * kBatches;
            double se = std::sqrt(p * (1 - p) / n);
            EXPECT_NEAR(count[l] / n, p, 5 * se) << mix_policy_name(pol) << " language " << l;
            EXPECT_EQ(ld.delivered()[l], count[l] * 16);
        }
    }
}

TEST(Loader, PacksDocumentsWithEosAndCoversAnEpoch) {
    Synth s({30});
    BatchLoader ld(s.langs(), {}, 1, 10, -7, 1);
    std::vector<int32_t> stream, row(10);
    for (int i = 0; i < 20; ++i) {
        ld.next(row);
        stream.insert(stream.end(), row.begin(), row.end());
    }
    // Split the stream at EOS: the first 30 documents are a permutation of all 30, whole.
    std::set<int32_t> seen;
    size_t i = 0;
    for (int d = 0; d < 30; ++d) {
        int32_t tok = stream[i];
        size_t len = 0;
        while (stream[i] != -7) {
            EXPECT_EQ(stream[i], tok);
            ++i, ++len;
        }
        ++i;
        EXPECT_EQ(len, static_cast<size_t>(1 + tok % 7));
        EXPECT_TRUE(seen.insert(tok).second);
    }
    EXPECT_EQ(seen.size(), 30u);
}

TEST(Loader, DeterministicAndResumable) {
    Synth s({20, 35, 9});
    MixtureOptions o;
    BatchLoader a(s.langs(), o, 4, 12, 0, 7), b(s.langs(), o, 4, 12, 0, 7),
        c(s.langs(), o, 4, 12, 0, 8);
    std::vector<int32_t> x(48), y(48), z(48);
    bool differs = false;
    nlohmann::json saved;
    for (int i = 0; i < 30; ++i) {
        a.next(x);
        b.next(y);
        c.next(z);
        EXPECT_EQ(x, y);
        differs |= x != z;
        if (i == 12) saved = a.state();
    }
    EXPECT_TRUE(differs);  // another seed gives other batches
    BatchLoader r(s.langs(), o, 4, 12, 0, 7);
    r.restore(nlohmann::json::parse(saved.dump()));
    BatchLoader a2(s.langs(), o, 4, 12, 0, 7);
    for (int i = 0; i < 13; ++i)
        a2.next(x);
    for (int i = 0; i < 17; ++i) {
        a2.next(x);
        r.next(y);
        EXPECT_EQ(x, y) << "batch " << i;
    }
    BatchLoader wrong(s.langs(), o, 4, 12, 0, 99);
    EXPECT_TRUE(throws_error_with([&] { wrong.restore(saved); }, {"seed 99"}));
}

TEST(Loader, RanksSeeDisjointDocuments) {
    Synth s({60});
    std::vector<std::set<int32_t>> seen(3);
    for (int rank = 0; rank < 3; ++rank) {
        BatchLoader ld(s.langs(), {}, 2, 8, -1, 5, rank, 3);
        std::vector<int32_t> row(16);
        for (int i = 0; i < 5; ++i) {
            ld.next(row);
            for (int32_t t : row)
                if (t >= 0) seen[static_cast<size_t>(rank)].insert(t);
        }
    }
    for (int a = 0; a < 3; ++a)
        for (int b = a + 1; b < 3; ++b)
            for (int32_t t : seen[static_cast<size_t>(a)])
                EXPECT_FALSE(seen[static_cast<size_t>(b)].count(t));
    for (int rank = 0; rank < 3; ++rank)
        for (int32_t t : seen[static_cast<size_t>(rank)])
            EXPECT_EQ(t % 3, rank);
}

TEST(Loader, EpochCapExhaustsLanguages) {
    Synth s({3, 100});
    MixtureOptions o;
    o.policy = MixPolicy::kUniform;
    o.max_epochs = 1;
    BatchLoader ld(s.langs(), o, 1, 4, 0, 3);
    std::vector<int32_t> row(4);
    std::vector<int> rows;
    int small_rows_late = 0;
    for (int i = 0; i < 60; ++i) {
        ld.next(row, &rows);
        if (i >= 20 && rows[0] == 0) ++small_rows_late;
    }
    // Language 0 has 3 docs (≤ 3+3+3+3 = 12 tokens): it is exhausted early and then skipped.
    EXPECT_EQ(small_rows_late, 0);
    EXPECT_LE(ld.delivered()[0], 16);
}

}  // namespace
}  // namespace polymoe::data
