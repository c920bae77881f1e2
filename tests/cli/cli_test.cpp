// Smoke and contract tests of the polymoe binary: --help, usage errors (exit 2), user errors with
// messages that name the file/tensor/flag (exit 1), `init` + `forward` producing every tensor of
// the CLI contract, and the forward output of fixtures compared with their PyTorch goldens.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "golden/compare.h"
#include "io/safetensors.h"

namespace polymoe::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(POLYMOE_SOURCE_DIR) / "tests" / "fixtures";

struct Result {
    int code = -1;
    std::string out;  // stdout + stderr
};

Result run(const std::string& args) {
    Result r;
    const std::string cmd = std::string(POLYMOE_BIN) + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        r.out.append(buf, n);
    const int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

class Cli : public ::testing::Test {
protected:
    fs::path dir;
    void SetUp() override {
        dir = fs::temp_directory_path() /
              ("polymoe_cli_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    void TearDown() override { fs::remove_all(dir); }
    std::string p(const std::string& name) const { return (dir / name).string(); }
    void write(const std::string& name, const std::string& text) const {
        std::ofstream(dir / name) << text;
    }
};

TEST_F(Cli, HelpAndUsageErrors) {
    EXPECT_EQ(run("--help").code, 0);
    Result h = run("forward --help");
    EXPECT_EQ(h.code, 0);
    EXPECT_NE(h.out.find("--attention-mask"), std::string::npos);
    Result u = run("forward --model x --tokens y --out z --no-such-flag 3");
    EXPECT_EQ(u.code, 2) << u.out;
    EXPECT_NE(u.out.find("--no-such-flag"), std::string::npos) << u.out;
    EXPECT_EQ(run("frobnicate").code, 2);
    EXPECT_EQ(run("init --preset nope --out " + p("x")).code, 1);
}

TEST_F(Cli, InitThenForwardWritesEveryContractTensor) {
    ASSERT_EQ(run("init --preset micro --seed 3 --out " + p("m")).code, 0);
    EXPECT_TRUE(fs::exists(dir / "m" / "config.json"));
    EXPECT_TRUE(fs::exists(dir / "m" / "generation_config.json"));
    EXPECT_TRUE(fs::exists(dir / "m" / "run.json"));
    write("tokens.txt", "1 2 3 4 5\n6 7 8 9 10\n");
    Result r = run("forward --model " + p("m") + " --tokens " + p("tokens.txt") + " --out " +
                   p("out.safetensors") + " --threads 2");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(fs::exists(p("out.safetensors.run.json")));
    auto f = io::SafetensorsFile::open(p("out.safetensors"));
    auto shape = [&](const std::string& n) {
        const io::TensorInfo* t = f.find(n);
        EXPECT_NE(t, nullptr) << n;
        return t ? t->shape : std::vector<int64_t>{};
    };
    EXPECT_EQ(shape("logits"), (std::vector<int64_t>{2, 5, 256}));
    for (int l = 0; l < 2; ++l) {
        const std::string s = std::to_string(l);
        EXPECT_EQ(shape("router_logits." + s), (std::vector<int64_t>{10, 8}));
        EXPECT_EQ(shape("router_probs." + s), (std::vector<int64_t>{10, 8}));
        EXPECT_EQ(shape("topk_idx." + s), (std::vector<int64_t>{10, 2}));
        EXPECT_EQ(f.find("topk_idx." + s)->dtype, DType::I64);
        EXPECT_EQ(shape("topk_weight." + s), (std::vector<int64_t>{10, 2}));
        EXPECT_EQ(shape("routing_margin." + s), (std::vector<int64_t>{10}));
    }
    for (const char* n :
         {"ce", "aux", "z", "megablocks_lb", "megablocks_z", "hf_total", "olmoe_total"})
        EXPECT_EQ(shape(std::string("loss.") + n), (std::vector<int64_t>{1}));
    // Same input, same threads: bit-identical file.
    ASSERT_EQ(run("forward --model " + p("m") + " --tokens " + p("tokens.txt") + " --out " +
                  p("out2.safetensors") + " --threads 2")
                  .code,
              0);
    auto read = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    EXPECT_EQ(read(p("out.safetensors")), read(p("out2.safetensors")));
}

TEST_F(Cli, ForwardOfFixturesMatchesGolden) {
    for (const std::string name : {"micro_padded", "micro_bf16_sharded"}) {
        const fs::path fx = kFixtures / name;
        std::string args = "forward --model " + fx.string() + " --tokens " +
                           (fx / "tokens.npy").string() + " --out " + p(name + ".safetensors");
        if (fs::exists(fx / "attention_mask.npy"))
            args += " --attention-mask " + (fx / "attention_mask.npy").string();
        Result r = run(args);
        ASSERT_EQ(r.code, 0) << r.out;
        auto out = read_all(io::SafetensorsFile::open(p(name + ".safetensors")));
        auto golden = read_all(io::SafetensorsFile::open((fx / "golden.safetensors").string()));
        Comparison c = compare(out, golden, 1e-5);
        EXPECT_TRUE(c.ok()) << name << ": " << c.report();
    }
}

// --weights bf16-resident (GEMM weights mapped from the bf16 shards) writes the same bytes as
// --compute bf16; asking it for f32 compute is a usage error naming both flags.
TEST_F(Cli, ForwardBf16ResidentEqualsBf16Compute) {
    const fs::path fx = kFixtures / "micro_bf16_sharded";
    const std::string base =
        "forward --model " + fx.string() + " --tokens " + (fx / "tokens.npy").string();
    ASSERT_EQ(run(base + " --compute bf16 --out " + p("a.safetensors")).code, 0);
    Result r = run(base + " --weights bf16-resident --out " + p("b.safetensors"));
    ASSERT_EQ(r.code, 0) << r.out;
    auto read = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    EXPECT_EQ(read(p("a.safetensors")), read(p("b.safetensors")));
    ASSERT_EQ(run(base + " --out " + p("c.safetensors")).code, 0);
    EXPECT_NE(read(p("a.safetensors")), read(p("c.safetensors")));  // f32 compute differs
    Result bad = run(base + " --weights bf16-resident --compute f32 --out " + p("d.safetensors"));
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.out.find("--compute f32"), std::string::npos) << bad.out;
    EXPECT_NE(bad.out.find("--weights bf16-resident"), std::string::npos) << bad.out;
}

TEST_F(Cli, InitTinyReproducesThePythonInitGolden) {
    // tools/polymoe_rng.py draws the same weights as `polymoe init --seed 7`; the golden was
    // computed by PyTorch from them, so this checks init, save, load and forward together.
    const fs::path fx = kFixtures / "tiny";
    ASSERT_EQ(run("init --preset tiny --seed 7 --dtype f32 --shards 2 --out " + p("tiny")).code, 0);
    EXPECT_TRUE(fs::exists(dir / "tiny" / "model.safetensors.index.json"));
    Result r = run("forward --model " + p("tiny") + " --tokens " + (fx / "tokens.npy").string() +
                   " --out " + p("tiny.safetensors"));
    ASSERT_EQ(r.code, 0) << r.out;
    auto out = read_all(io::SafetensorsFile::open(p("tiny.safetensors")));
    auto golden = read_all(io::SafetensorsFile::open((fx / "golden.safetensors").string()));
    Comparison c = compare(out, golden, 1e-5);
    EXPECT_TRUE(c.ok()) << c.report();
}

TEST_F(Cli, TokenizeJsonlMatchesTheReferenceTokenizer) {
    // Every golden case of tests/fixtures/tokenizer (npm tokenizers output) through the binary:
    // one JSONL document per case in, one line of ids per document out, in order.
    std::ifstream in(kFixtures / "tokenizer" / "cases.jsonl");
    std::vector<std::vector<int64_t>> expected;
    {
        std::ofstream docs(dir / "docs.jsonl");
        std::string line;
        while (std::getline(in, line)) {
            auto j = nlohmann::json::parse(line);
            docs << nlohmann::json{{"text", j["text"]}}.dump() << "\n";
            expected.push_back(j["ids"].get<std::vector<int64_t>>());
        }
    }
    ASSERT_GT(expected.size(), 500u);
    Result r = run("tokenize --in " + p("docs.jsonl") + " --out " + p("ids.txt") + " --threads 2");
    ASSERT_EQ(r.code, 0) << r.out;
    std::ifstream got(p("ids.txt"));
    std::string line;
    size_t n = 0, equal = 0;
    while (std::getline(got, line)) {
        std::istringstream ss(line);
        std::vector<int64_t> ids;
        int64_t v;
        while (ss >> v)
            ids.push_back(v);
        if (n < expected.size() && ids == expected[n]) ++equal;
        ++n;
    }
    EXPECT_EQ(n, expected.size());
    EXPECT_EQ(equal, expected.size());
}

TEST_F(Cli, TrainWritesLogCheckpointsAndRejectsShapeMismatch) {
    const fs::path fx = kFixtures / "micro";
    const std::string base = "train --model " + fx.string() + " --tokens " +
                             (fx / "tokens.npy").string() + " --out " + p("run");
    Result r = run(base + " --steps 3 --save-every 2 --lr 1e-2 --threads 2");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(fs::exists(dir / "run" / "step-2" / "model.safetensors"));
    EXPECT_TRUE(fs::exists(dir / "run" / "final" / "config.json"));
    EXPECT_TRUE(fs::exists(dir / "run" / "run.json"));
    std::ifstream log(dir / "run" / "log.jsonl");
    std::string line;
    int64_t n = 0;
    double first = 0, last = 0;
    while (std::getline(log, line)) {
        auto j = nlohmann::json::parse(line);
        EXPECT_EQ(j["step"].get<int64_t>(), n + 1);
        for (const char* k : {"lr", "loss", "ce", "aux", "z", "megablocks_lb", "megablocks_z",
                              "grad_norm", "tokens", "seconds"})
            EXPECT_TRUE(j.contains(k)) << k;
        (n == 0 ? first : last) = j["loss"].get<double>();
        ++n;
    }
    EXPECT_EQ(n, 3);
    EXPECT_LT(last, first);  // the fixed batch is being fitted
    Result bad = run(base + "2 --batch 5");
    EXPECT_EQ(bad.code, 1) << bad.out;
    EXPECT_NE(bad.out.find("--batch"), std::string::npos) << bad.out;
}

TEST_F(Cli, PrepareTrainTraceOnTheEmbeddedCorpus) {
    const std::string manifest =
        (fs::path(POLYMOE_SOURCE_DIR) / "configs/corpus/udhr.yaml").string();
    Result r = run("prepare --manifest " + manifest + " --out " + p("prep") + " --threads 2");
    ASSERT_EQ(r.code, 0) << r.out;
    std::ifstream sf(dir / "prep" / "stats.json");
    auto stats = nlohmann::json::parse(sf);
    ASSERT_EQ(stats["languages"].size(), 11u);
    for (const auto& [code, l] : stats["languages"].items()) {
        EXPECT_EQ(l["heldout"]["documents"].get<int64_t>(), 6) << code;  // articles 5, 10, ..., 30
        EXPECT_GT(l["train"]["tokens"].get<int64_t>(), 1000) << code;
    }
    EXPECT_EQ(stats["languages"]["glg"]["info"]["related"], "spa");
    EXPECT_GT(stats["vocab_overlap"]["matrix"]["glg"]["spa"].get<double>(),
              stats["vocab_overlap"]["matrix"]["glg"]["rus"].get<double>());
    Result again = run("prepare --manifest " + manifest + " --out " + p("prep"));
    EXPECT_NE(again.out.find("up to date"), std::string::npos) << again.out;
    // A model whose vocabulary is smaller than the tokenizer's is refused by name.
    ASSERT_EQ(run("init --preset micro --out " + p("micro")).code, 0);
    Result small = run("train --model " + p("micro") + " --data " + p("prep") + " --out " + p("x") +
                       " --steps 1");
    EXPECT_EQ(small.code, 1) << small.out;
    EXPECT_NE(small.out.find("vocab_size"), std::string::npos) << small.out;
    // Stage-1 training from a stage config, then a trace of the result.
    ASSERT_EQ(run("init --preset demo --set num_hidden_layers=2 --out " + p("m")).code, 0);
    write("stage1.yaml",
          "model: m\ndata: prep\nout: s1\nstage: \"1\"\nreplay-stages: base\n"
          "replay: 0.25\nsteps: 3\nbatch: 2\nseq: 32\nlr: 1.0e-3\n");
    Result t = run("train --config " + p("stage1.yaml") + " --threads 2");
    ASSERT_EQ(t.code, 0) << t.out;
    std::ifstream log(dir / "s1" / "log.jsonl");
    std::string line;
    std::set<std::string> seen;
    while (std::getline(log, line)) {
        const auto j = nlohmann::json::parse(line);
        for (const auto& [code, n] : j["tokens_by_language"].items())
            if (n.get<int64_t>() > 0) seen.insert(code);
    }
    EXPECT_FALSE(seen.empty());
    for (const auto& code : seen)
        EXPECT_TRUE(code == "eng" || code == "spa" || code == "rus" || code == "arb" ||
                    code == "hin" || code == "cmn_hans")
            << code;
    write("bad.yaml", "model: m\ncolour: blue\n");
    Result bad = run("train --config " + p("bad.yaml"));
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.out.find("bad.yaml:2"), std::string::npos) << bad.out;
    Result tr = run("trace --model " + p("s1/final") + " --data " + p("prep") +
                    " --max-tokens 40 --languages spa,glg --out " + p("t/s1.trace"));
    ASSERT_EQ(tr.code, 0) << tr.out;
    EXPECT_NE(tr.out.find("80 tokens"), std::string::npos) << tr.out;
    EXPECT_TRUE(fs::exists(p("t/s1.trace.run.json")));
    // eval under a routing intervention: forcing four experts (K) at both layers, steering one.
    Result ev =
        run("eval --model " + p("s1/final") + " --data " + p("prep") +
            " --languages spa --max-tokens 40 --bootstrap 20 --force 0,1,2,3 --steer 4=1.5@1" +
            " --out " + p("ev.json"));
    ASSERT_EQ(ev.code, 0) << ev.out;
    const auto ej = nlohmann::json::parse(std::ifstream(p("ev.json")));
    EXPECT_EQ(ej["intervention"]["force"][0], "0,1,2,3");
    const auto& spa = ej["models"][0]["languages"]["spa"];
    EXPECT_NEAR(
        spa["delta_ce_nats"]["value"].get<double>(),
        spa["intervened"]["ce_nats"]["value"].get<double>() - spa["ce_nats"]["value"].get<double>(),
        1e-9);
    EXPECT_NE(spa["delta_ce_nats"]["value"].get<double>(), 0.0);
    Result bad_iv = run("eval --model " + p("s1/final") + " --data " + p("prep") +
                        " --mask 0,1,2@1:5 --out " + p("ev2.json"));
    EXPECT_EQ(bad_iv.code, 2);
    EXPECT_NE(bad_iv.out.find("--mask 0,1,2@1:5: expected layers FIRST:LAST with 0 <= FIRST <= "
                              "LAST <= 1, found 1:5"),
              std::string::npos)
        << bad_iv.out;
}

TEST_F(Cli, TraceImportExportAndCountTables) {
    const std::string npz = (kFixtures / "npz").string() + "/";
    // Import a numpy table, export it, re-import the export: the traces are byte-identical.
    Result r =
        run("trace import --table " + npz + "table_int16_compressed.npz --out " + p("a.trace"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("12 tokens, 5 documents, 2 groups, 2 layers, K 2, E 5"), std::string::npos)
        << r.out;
    EXPECT_TRUE(fs::exists(p("a.trace.run.json")));
    r = run("trace export --trace " + p("a.trace") + " --out " + p("a.npz") + " --compress");
    ASSERT_EQ(r.code, 0) << r.out;
    ASSERT_EQ(run("trace import --table " + p("a.npz") + " --out " + p("b.trace")).code, 0);
    std::ifstream fa(p("a.trace"), std::ios::binary), fb(p("b.trace"), std::ios::binary);
    EXPECT_TRUE(
        std::equal(std::istreambuf_iterator<char>(fa), {}, std::istreambuf_iterator<char>(fb), {}));
    // A table without doc says each token is its own document.
    r = run("trace import --table " + npz + "table_minimal.npz --out " + p("m.trace"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("each token is its own document"), std::string::npos) << r.out;
    ASSERT_EQ(run("analyze --trace " + p("a.trace") + " --bootstrap 5 --permutations 5 --out " +
                  p("an/a.json"))
                  .code,
              0);
    // Count table: analysed in the trace schema, unavailable statistics said so.
    r = run("analyze --counts " + npz + "counts_basic.npz --out " + p("an/c.json"));
    ASSERT_EQ(r.code, 0) << r.out;
    std::ifstream cf(p("an/c.json"));
    const auto j = nlohmann::json::parse(cf);
    EXPECT_EQ(j["traces"][0]["source"]["kind"], "counts");
    EXPECT_EQ(j["traces"][0]["layers"], nlohmann::json({3, 7}));
    EXPECT_EQ(j["traces"][0]["availability"]["bootstrap_ci"]["available"], false);
    // Errors: bad tables exit 1 naming file and key; --trace and --counts together exit 2.
    r = run("trace import --table " + npz + "bad_duplicate_ids.npz --out " + p("x.trace"));
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("bad_duplicate_ids.npz: key 'topk_ids'"), std::string::npos) << r.out;
    r = run("analyze --counts " + npz + "counts_basic.npz --counts-key nope --out " + p("x.json"));
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("'nope'"), std::string::npos) << r.out;
    EXPECT_EQ(run("analyze --counts x.npz --trace y.trace --out " + p("x.json")).code, 2);
    EXPECT_EQ(run("trace --out " + p("x.trace")).code, 2);  // recording needs --model, --data
    const std::string olmoe = "/work/shared/real-routing/olmoe_domains_routing.npz";
    if (fs::exists(olmoe)) {
        r = run("analyze --counts " + olmoe +
                " --counts-key counts_top8 --names-key counts_names --layers-key counts_layers "
                "--out " +
                p("an/olmoe.json"));
        EXPECT_EQ(r.code, 0) << r.out;
        EXPECT_EQ(run("trace import --table " + olmoe + " --out " + p("olmoe.trace")).code, 0);
    }
}

// --trainable and eval_interval from a stage config: routers-only training leaves every other
// tensor's bytes alone, eval lines appear at steps 0, 2 and 3 for every prepared language, and
// evaluating does not change the trajectory. A pattern matching nothing is an error naming it.
TEST_F(Cli, TrainTrainableSubsetWithPeriodicEval) {
    const std::string manifest =
        (fs::path(POLYMOE_SOURCE_DIR) / "configs/corpus/udhr.yaml").string();
    ASSERT_EQ(run("prepare --manifest " + manifest + " --out " + p("prep")).code, 0);
    ASSERT_EQ(run("init --preset demo --set num_hidden_layers=2 --out " + p("m")).code, 0);
    const std::string common =
        "model: m\ndata: prep\nstage: \"1\"\nsteps: 3\nbatch: 2\nseq: 32\nlr: 1.0e-2\n"
        "trainable: routers\n";
    write("eval.yaml", common + "out: e\neval_interval: 2\neval-tokens: 40\n");
    write("plain.yaml", common + "out: p\n");
    Result e = run("train --config " + p("eval.yaml") + " --threads 2");
    ASSERT_EQ(e.code, 0) << e.out;
    EXPECT_NE(e.out.find("2 of 117 tensors"), std::string::npos) << e.out;
    EXPECT_NE(e.out.find("peak RSS"), std::string::npos) << e.out;
    ASSERT_EQ(run("train --config " + p("plain.yaml") + " --threads 2").code, 0);
    std::ifstream log(dir / "e" / "log.jsonl");
    std::string line;
    std::vector<int64_t> eval_steps;
    int64_t steps = 0;
    while (std::getline(log, line)) {
        const auto j = nlohmann::json::parse(line);
        if (!j.contains("event")) {
            ++steps;
            EXPECT_GT(j["peak_rss_mib"].get<double>(), 1.0);
            // Current RSS: positive and not above the peak so far beyond the lag of the
            // kernel's RSS counters (kept per thread and folded in lazily, so /proc and
            // getrusage can disagree by some pages; 103.59 vs 103.50 MiB was seen).
            EXPECT_GT(j["rss_mib"].get<double>(), 1.0);
            EXPECT_LE(j["rss_mib"].get<double>(), j["peak_rss_mib"].get<double>() + 4.0);
            continue;
        }
        EXPECT_EQ(j["event"], "eval");
        eval_steps.push_back(j["step"].get<int64_t>());
        EXPECT_EQ(j["ce_by_language"].size(), 11u);
        for (const auto& [code, n] : j["tokens_by_language"].items())
            EXPECT_EQ(n.get<int64_t>(), 40) << code;
    }
    EXPECT_EQ(steps, 3);
    EXPECT_EQ(eval_steps, (std::vector<int64_t>{0, 2, 3}));
    auto a = io::SafetensorsFile::open(p("e/final/model.safetensors"));
    auto b = io::SafetensorsFile::open(p("p/final/model.safetensors"));
    auto m = io::SafetensorsFile::open(p("m/model.safetensors"));
    int routers_changed = 0;
    for (const auto& t : a.tensors()) {
        const size_t n = static_cast<size_t>(t.numel()) * dtype_size(t.dtype);
        EXPECT_EQ(0, std::memcmp(a.data(t), b.data(*b.find(t.name)), n)) << t.name;
        const bool same = std::memcmp(a.data(t), m.data(*m.find(t.name)), n) == 0;
        if (t.name.find("mlp.gate.weight") != std::string::npos)
            routers_changed += !same;
        else
            EXPECT_TRUE(same) << t.name;
    }
    EXPECT_EQ(routers_changed, 2);
    Result bad = run("train --config " + p("plain.yaml") + " --trainable 'routers,*.mlp.gatte.*'");
    EXPECT_EQ(bad.code, 1) << bad.out;
    EXPECT_NE(bad.out.find("'*.mlp.gatte.*' matches no parameter"), std::string::npos) << bad.out;
    Result noeval =
        run("train --model " + p("m") + " --tokens x --out " + p("n") + " --eval-interval 1");
    EXPECT_EQ(noeval.code, 2) << noeval.out;
    EXPECT_NE(noeval.out.find("--eval-interval"), std::string::npos) << noeval.out;
}

// bench --profile: the regions of a training step are disjoint (their sum stays within the mean
// step) and cover the forward, backward and optimizer; a forward has forward regions only, and a
// trace (routing capture) the same without the lm head, next to the forward it is compared with.
TEST_F(Cli, BenchProfileSplitsTheStepIntoDisjointRegions) {
    const std::string common = " --preset micro --seq 64 --repeats 2 --threads 2 --profile --out ";
    Result t = run("bench train --recompute" + common + p("train.jsonl"));
    ASSERT_EQ(t.code, 0) << t.out;
    EXPECT_NE(t.out.find("bwd.experts"), std::string::npos) << t.out;  // the stderr table
    Result f = run("bench forward" + common + p("fwd.jsonl"));
    ASSERT_EQ(f.code, 0) << f.out;
    Result tr = run("bench trace" + common + p("trace.jsonl"));
    ASSERT_EQ(tr.code, 0) << tr.out;
    for (const std::string name : {"train", "fwd", "trace"}) {
        std::ifstream in(dir / (name + ".jsonl"));
        std::string line;
        ASSERT_TRUE(std::getline(in, line)) << name;
        const auto j = nlohmann::json::parse(line);
        const auto prof = j.at("profile");
        std::set<std::string> regions;
        double sum = 0;
        for (const auto& r : prof.at("regions")) {
            regions.insert(r.at("region").get<std::string>());
            EXPECT_GT(r.at("s_per_step").get<double>(), 0.0) << r;
            sum += r.at("s_per_step").get<double>();
        }
        const double mean = prof.at("mean_s").get<double>();
        EXPECT_LE(sum, mean * (1 + 1e-9)) << line;  // nested or double-counted regions fail this
        EXPECT_NEAR(prof.at("unprofiled_s_per_step").get<double>(), mean - sum, 1e-9 * mean);
        for (const char* r : {"fwd.embedding", "fwd.norm", "fwd.qkv_proj", "fwd.attention",
                              "fwd.router", "fwd.experts"})
            EXPECT_TRUE(regions.count(r)) << name << " lacks " << r;
        const bool train = name == "train";
        for (const char* r : {"bwd.head", "bwd.experts", "bwd.attention", "recompute.experts",
                              "bwd.grad_zero", "step.clip", "step.optimizer"})
            EXPECT_EQ(regions.count(r), train ? 1u : 0u) << name << ": " << r;
        EXPECT_EQ(regions.count("fwd.head"), name == "fwd" ? 1u : 0u) << name;
        if (name == "trace") {
            EXPECT_GT(j.at("forward_median_s").get<double>(), 0.0);
            const double share = j.at("lm_head_flop_share").get<double>();
            EXPECT_GT(share, 0.0);
            EXPECT_LT(share, 1.0);
            EXPECT_DOUBLE_EQ(j.at("target_trace_over_forward_time").get<double>(), 1 - share);
            EXPECT_NEAR(j.at("trace_over_forward_time").get<double>(),
                        j.at("median_s").get<double>() / j.at("forward_median_s").get<double>(),
                        1e-12);
        }
    }
}

TEST_F(Cli, BadInputsNameTheProblem) {
    ASSERT_EQ(run("init --preset micro --out " + p("m")).code, 0);
    write("tokens.txt", "1 2 3\n");
    const std::string tail = " --tokens " + p("tokens.txt") + " --out " + p("o.safetensors");
    auto expect_error = [&](const std::string& args, const std::string& needle) {
        Result r = run(args);
        EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
        EXPECT_NE(r.out.find(needle), std::string::npos) << "expected '" << needle << "' in:\n"
                                                         << r.out;
    };
    // Token id >= vocab, ragged text.
    write("big.txt", "1 2 256\n");
    expect_error("forward --model " + p("m") + " --tokens " + p("big.txt") + " --out " + p("o"),
                 "256");
    write("ragged.txt", "1 2 3\n4 5\n");
    expect_error("forward --model " + p("m") + " --tokens " + p("ragged.txt") + " --out " + p("o"),
                 "ragged");
    // Missing tensor: a config with one more layer than the weights.
    fs::copy(dir / "m", dir / "more_layers", fs::copy_options::recursive);
    {
        std::ifstream in(dir / "m" / "config.json");
        auto j = nlohmann::json::parse(in);
        j["num_hidden_layers"] = 3;
        std::ofstream(dir / "more_layers" / "config.json") << j.dump();
        j["num_hidden_layers"] = 2;
        j["intermediate_size"] = 17;
        fs::copy(dir / "m", dir / "wrong_shape", fs::copy_options::recursive);
        std::ofstream(dir / "wrong_shape" / "config.json") << j.dump();
    }
    expect_error("forward --model " + p("more_layers") + tail, "model.layers.2.");
    expect_error("forward --model " + p("wrong_shape") + tail, "expected [17, 32]");
    // Truncated and corrupted safetensors.
    fs::copy(dir / "m", dir / "trunc", fs::copy_options::recursive);
    fs::resize_file(dir / "trunc" / "model.safetensors",
                    fs::file_size(dir / "trunc" / "model.safetensors") / 2);
    expect_error("forward --model " + p("trunc") + tail, "model.safetensors");
    fs::copy(dir / "m", dir / "corrupt", fs::copy_options::recursive);
    {
        std::fstream f(dir / "corrupt" / "model.safetensors",
                       std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(8);
        f.write("#garbage", 8);
    }
    expect_error("forward --model " + p("corrupt") + tail, "model.safetensors");
    // Not an OLMoE config.
    fs::copy(dir / "m", dir / "llama", fs::copy_options::recursive);
    std::ofstream(dir / "llama" / "config.json") << R"({"model_type": "llama"})";
    expect_error("forward --model " + p("llama") + tail, "model_type");
    expect_error("forward --model " + p("nonexistent") + tail, "nonexistent");
}

}  // namespace
}  // namespace polymoe::testing
