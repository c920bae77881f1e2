// Write failures (issue 12): a full disk, an output path that cannot be a directory and a
// read-only output directory must stop a writer with an error that names the path and the OS
// reason, leave no half-written file under a final name, and (for `polymoe train`) keep the
// previous checkpoint loadable and resumable bit-exactly.
//
// "Disk full" is simulated with RLIMIT_FSIZE in a child process with SIGXFSZ ignored: writes past
// the limit then fail with EFBIG ("File too large") after a short write, which exercises the same
// code paths as ENOSPC and works for root too. /dev/full gives a real ENOSPC for writers that
// accept a path as is. Permission bits are ignored by root (CI runs as root), so the read-only
// case runs only as another user; an output path under a regular file (ENOTDIR) stands in for it
// under root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/shard.h"
#include "io/hf_checkpoint.h"
#include "io/safetensors.h"
#include "model/params.h"
#include "run_polymoe.h"
#include "trace/trace_file.h"

namespace polymoe::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kFixture = fs::path(POLYMOE_SOURCE_DIR) / "tests" / "fixtures" / "micro";

// Large enough for the micro model's weights (207 KB in F32) and the small JSON files, too small
// for its optimizer state (two F32 moments, 414 KB): the checkpoint fails half-way through.
constexpr rlim_t kFileLimit = 300 * 1000;

void limit_file_size(rlim_t bytes) {
    ::signal(SIGXFSZ, SIG_IGN);  // EFBIG from write(2) instead of death by signal
    struct rlimit rl {
        bytes, bytes
    };
    ::setrlimit(RLIMIT_FSIZE, &rl);
}

// Runs polymoe with `args`, output to `log`; with fsize > 0 under RLIMIT_FSIZE = fsize bytes.
Outcome run(const std::vector<std::string>& args, const fs::path& log, rlim_t fsize = 0) {
    std::function<void()> limit;
    if (fsize > 0) limit = [fsize] { limit_file_size(fsize); };
    return run_polymoe(args, log, "", limit);
}

// Runs `fn` in a child under a file size limit; returns the polymoe::Error message it threw,
// "no error" if it returned, or "other exception" / "crashed".
std::string error_in_child(const std::function<void()>& fn, const fs::path& msg_file) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        limit_file_size(kFileLimit);
        std::string msg = "no error";
        try {
            fn();
        } catch (const Error& e) {
            msg = e.what();
        } catch (...) {
            msg = "other exception";
        }
        // Short message, small file: far below the limit.
        std::ofstream(msg_file) << msg;
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) return "crashed";
    std::ifstream in(msg_file);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

bool has_temporary(const fs::path& dir) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.find(".tmp") != std::string::npos || n.find(".old-") != std::string::npos)
            return true;
    }
    return false;
}

class WriteErrors : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("polymoe_write_error_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::permissions(dir_ / "out", fs::perms::owner_all, ec);
        fs::remove_all(dir_);
    }
    std::vector<std::string> train_args(const fs::path& out, const std::string& resume = "") {
        std::vector<std::string> a{"train",
                                   "--model",
                                   kFixture.string(),
                                   "--tokens",
                                   (kFixture / "tokens.npy").string(),
                                   "--out",
                                   out.string(),
                                   "--steps",
                                   "6",
                                   "--save-every",
                                   "2",
                                   "--lr",
                                   "1e-2",
                                   "--threads",
                                   "2"};
        if (!resume.empty()) a.insert(a.end(), {"--resume", resume});
        return a;
    }
    // ref/: an uninterrupted run; out/step-2: a copy of its first checkpoint.
    void make_reference() {
        const Outcome ref = run(train_args(dir_ / "ref"), dir_ / "ref.log");
        ASSERT_EQ(ref.code, 0) << ref.out;
        fs::create_directories(dir_ / "out");
        fs::copy(dir_ / "ref" / "step-2", dir_ / "out" / "step-2");
    }
    void expect_step2_intact() {
        for (const char* f :
             {"model.safetensors", "optimizer.safetensors", "trainer_state.json", "config.json"})
            EXPECT_EQ(bytes(dir_ / "out" / "step-2" / f), bytes(dir_ / "ref" / "step-2" / f)) << f;
        EXPECT_NO_THROW(model::load_checkpoint((dir_ / "out" / "step-2").string()));
    }
    // Resuming from out/step-2 without any limit ends exactly where the reference run ended.
    void expect_resumes_bit_exactly() {
        const Outcome r =
            run(train_args(dir_ / "out", (dir_ / "out" / "step-2").string()), dir_ / "resume.log");
        ASSERT_EQ(r.code, 0) << r.out;
        for (const char* f : {"model.safetensors", "optimizer.safetensors"})
            EXPECT_EQ(bytes(dir_ / "out" / "final" / f), bytes(dir_ / "ref" / "final" / f)) << f;
    }
    fs::path dir_;
};

TEST_F(WriteErrors, DiskFullDuringCheckpointKeepsThePreviousOne) {
    make_reference();
    const Outcome o = run(train_args(dir_ / "out", (dir_ / "out" / "step-2").string()),
                          dir_ / "full.log", kFileLimit);
    EXPECT_EQ(o.code, 1) << o.out;
    // The checkpoint being written, the file that hit the limit, the OS reason, and the advice.
    EXPECT_NE(o.out.find("cannot save the checkpoint " + (dir_ / "out" / "step-4").string()),
              std::string::npos)
        << o.out;
    EXPECT_NE(o.out.find("optimizer.safetensors.tmp: cannot write: File too large"),
              std::string::npos)
        << o.out;
    EXPECT_NE(o.out.find("Earlier checkpoints are intact"), std::string::npos) << o.out;
    EXPECT_FALSE(fs::exists(dir_ / "out" / "step-4"));
    EXPECT_FALSE(has_temporary(dir_ / "out"));
    expect_step2_intact();
    expect_resumes_bit_exactly();
}

TEST_F(WriteErrors, ReadOnlyOutputDirectoryKeepsThePreviousCheckpoint) {
    if (::geteuid() == 0)
        GTEST_SKIP() << "root ignores permission bits; OutputUnderARegularFile covers root";
    make_reference();
    fs::permissions(dir_ / "out", fs::perms::owner_read | fs::perms::owner_exec);
    const Outcome o =
        run(train_args(dir_ / "out", (dir_ / "out" / "step-2").string()), dir_ / "ro.log");
    fs::permissions(dir_ / "out", fs::perms::owner_all);
    EXPECT_EQ(o.code, 1) << o.out;
    EXPECT_NE(o.out.find("Permission denied"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find((dir_ / "out").string()), std::string::npos) << o.out;
    expect_step2_intact();
    expect_resumes_bit_exactly();
}

TEST_F(WriteErrors, OutputUnderARegularFile) {
    std::ofstream(dir_ / "plain") << "not a directory\n";
    const fs::path out = dir_ / "plain" / "run";
    const Outcome o = run(train_args(out), dir_ / "notdir.log");
    EXPECT_EQ(o.code, 1) << o.out;  // a polymoe::Error, not an escaped filesystem_error (abort)
    EXPECT_NE(
        o.out.find("--out " + out.string() + ": cannot create the directory: Not a directory"),
        std::string::npos)
        << o.out;
    EXPECT_EQ(bytes(dir_ / "plain"), "not a directory\n");

    // The same for a checkpoint written through the io layer directly.
    const io::HfCheckpoint ck = io::HfCheckpoint::open(kFixture.string());
    const float x = 1.0f;
    try {
        io::write_hf_checkpoint((out / "ckpt").string(), ck.config(), nullptr,
                                {{"x", DType::F32, {1}, &x}}, 1, false);
        ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Not a directory"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(out.string()), std::string::npos) << e.what();
    }
}

// A command's result file (tokenize/eval/ablate/analyze go through cli::write_output_file):
// a full disk or an impossible path is an error naming the file and the reason, and leaves
// neither a truncated result nor a temporary file behind.
TEST_F(WriteErrors, ResultFileUnderAFullDiskOrARegularFile) {
    std::string text;
    for (int i = 0; i < 20000; ++i)
        text += "Word number " + std::to_string(i) + " of a long document. ";
    std::ofstream(dir_ / "doc.txt") << text;  // ~600 KB: over the 64 KiB limit once tokenized
    const fs::path out = dir_ / "ids.txt";
    const std::vector<std::string> args{"tokenize", "--in", (dir_ / "doc.txt").string(), "--out",
                                        out.string()};
    const Outcome full = run(args, dir_ / "tok_full.log", 64 * 1024);
    EXPECT_EQ(full.code, 1) << full.out;
    EXPECT_NE(full.out.find(out.string() + ".tmp: cannot write: File too large"), std::string::npos)
        << full.out;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
    // Control: without the limit the same command writes the whole file.
    const Outcome ok = run(args, dir_ / "tok.log");
    EXPECT_EQ(ok.code, 0) << ok.out;
    EXPECT_GT(fs::file_size(out), 64u * 1024);

    std::ofstream(dir_ / "plain2") << "x\n";
    const fs::path bad = dir_ / "plain2" / "ids.txt";
    const Outcome nd =
        run({"tokenize", "--text", "hello", "--out", bad.string()}, dir_ / "tok_notdir.log");
    EXPECT_EQ(nd.code, 1) << nd.out;
    EXPECT_NE(nd.out.find(bad.string()), std::string::npos) << nd.out;
    EXPECT_NE(nd.out.find("Not a directory"), std::string::npos) << nd.out;
}

TEST_F(WriteErrors, DevFullReportsNoSpace) {
    try {
        io::write_checkpoint_file("/dev/full", "{}\n");
        ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/dev/full: cannot write: No space left on device"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(WriteErrors, SafetensorsWriterUnderAFullDisk) {
    const std::vector<float> big(200 * 1000, 0.5f);  // 800 KB, above the limit
    const std::string path = (dir_ / "w.safetensors").string();
    const std::string msg = error_in_child(
        [&] {
            io::write_safetensors(
                path, {{"w", DType::F32, {static_cast<int64_t>(big.size())}, big.data()}});
        },
        dir_ / "msg");
    EXPECT_NE(msg.find(path + ".tmp: cannot write: File too large"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    // Negative control: the same write without the limit succeeds.
    io::write_safetensors(path,
                          {{"w", DType::F32, {static_cast<int64_t>(big.size())}, big.data()}});
    EXPECT_GT(fs::file_size(path), 800u * 1000u);
    EXPECT_NO_THROW(io::SafetensorsFile::open(path));
}

TEST_F(WriteErrors, TraceWriterUnderAFullDisk) {
    trace::TraceHeader h;
    h.layers = {0, 1};
    h.num_experts = 8;
    h.top_k = 2;
    h.has_logits = true;
    h.languages = {{"eng", "English", "Latn", "Indo-European/Germanic", "base", ""}};
    trace::ChunkBuffer c;
    c.reset(2, 2, 8, true);
    const int n = 5000;  // 5000 tokens x 2 layers x (2 ids + 2 weights + 8 logits): ~400 KB
    for (int i = 0; i < n; ++i) {
        c.lang.push_back(0), c.doc.push_back(0), c.passage.push_back(0);
        c.position.push_back(static_cast<uint32_t>(i)), c.token.push_back(1);
        for (int r = 0; r < 2; ++r) {
            c.expert[r].insert(c.expert[r].end(), {0, 1});
            c.weight[r].insert(c.weight[r].end(), {0.5f, 0.5f});
            c.logit[r].insert(c.logit[r].end(), 8, 0.0f);
        }
    }
    const std::string path = (dir_ / "t.pmtrace").string();
    const std::string msg = error_in_child(
        [&] {
            trace::TraceWriter w(path, h);
            w.write_chunk(c);
            w.finish();
        },
        dir_ / "msg");
    EXPECT_NE(msg.find(path + ".partial: write failed: File too large"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(path));
    // Negative control: without the limit the trace is written and reads back.
    {
        trace::TraceWriter w(path, h);
        w.write_chunk(c);
        w.finish();
    }
    EXPECT_EQ(trace::TraceFile::open(path).view().num_tokens(), n);
}

TEST_F(WriteErrors, ShardWriterUnderAFullDisk) {
    data::ShardMeta meta;
    meta.language = {"eng", "English", "Latn", "Indo-European/Germanic", "base", ""};
    meta.split = "train";
    meta.tokenizer = "tokenizer.json";
    meta.vocab_size = 100;
    const std::vector<int32_t> doc(1000, 7);
    const std::string path = (dir_ / "eng.train.00000.shard").string();
    auto write = [&] {
        data::ShardWriter w(path, meta);
        for (int i = 0; i < 100; ++i)  // 100 x 4 KB
            w.add_document(doc, i);
        w.finish();
    };
    const std::string msg = error_in_child(write, dir_ / "msg");
    EXPECT_NE(msg.find(path + ".tmp: write failed: File too large"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    write();  // negative control
    EXPECT_EQ(data::Shard::open(path).num_documents(), 100);
}

}  // namespace
}  // namespace polymoe::testing
