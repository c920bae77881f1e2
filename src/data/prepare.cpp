// prepare: manifest -> token shards + stats.json (see prepare.h).
#include "data/prepare.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/timer.h"
#include "data/filters.h"
#include "data/reader.h"
#include "data/shard.h"

namespace polymoe::data {

namespace fs = std::filesystem;

namespace {

struct SplitStats {
    int64_t documents = 0, bytes = 0, chars = 0, tokens = 0;
    nlohmann::ordered_json json() const {
        return {{"documents", documents},
                {"bytes", bytes},
                {"characters", chars},
                {"tokens", tokens},
                {"tokens_per_char", chars ? static_cast<double>(tokens) / chars : 0.0},
                {"tokens_per_byte", bytes ? static_cast<double>(tokens) / bytes : 0.0}};
    }
    void add(const SplitStats& o) {
        documents += o.documents, bytes += o.bytes, chars += o.chars, tokens += o.tokens;
    }
};

struct Pending {
    std::string text;
    int64_t passage, index;
};

// Rotating shard writers of one language and split.
class SplitWriter {
public:
    SplitWriter(std::string dir, ShardMeta meta, int64_t max_tokens)
        : dir_(std::move(dir)), meta_(std::move(meta)), max_tokens_(max_tokens) {
        open_next();
    }
    void add(std::span<const int32_t> ids, int64_t passage) {
        if (w_->num_tokens() > 0 &&
            w_->num_tokens() + static_cast<int64_t>(ids.size()) > max_tokens_) {
            w_->finish();
            open_next();
        }
        w_->add_document(ids, passage);
    }
    void finish() { w_->finish(); }
    int shards() const { return index_; }

private:
    void open_next() {
        w_ = std::make_unique<ShardWriter>(
            (fs::path(dir_) / shard_file_name(meta_.language.code, meta_.split, index_++)).string(),
            meta_);
    }
    std::string dir_;
    ShardMeta meta_;
    int64_t max_tokens_;
    int index_ = 0;
    std::unique_ptr<ShardWriter> w_;
};

std::string file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("data", "{}: cannot open: {}", path, std::strerror(errno));
    std::stringstream ss;
    ss << f.rdbuf();
    if (f.bad()) fail("data", "{}: cannot read: {}", path, std::strerror(errno));
    return ss.str();
}

// std::filesystem queries through their error_code overloads: the throwing ones raise
// std::filesystem_error (a permission error, a name over NAME_MAX), which the CLI does not catch,
// instead of a polymoe::Error naming the path.
bool is_file(const std::string& path) {
    std::error_code ec;
    const bool yes = fs::is_regular_file(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
        fail("data", "{}: cannot inspect: {}", path, ec.message());
    return yes;
}

int64_t size_of(const std::string& path) {
    std::error_code ec;
    const auto n = fs::file_size(path, ec);
    if (ec) fail("data", "{}: cannot read the file size: {}", path, ec.message());
    return static_cast<int64_t>(n);
}

nlohmann::ordered_json fingerprint(const Manifest& m,
                                   const tokenizer::Tokenizer& tok,
                                   const PrepareOptions& o,
                                   uint64_t tok_hash) {
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const auto& l : m.languages)
        for (const auto& s : l.sources)
            for (const auto& f : s.files) {
                struct stat st {};
                ::stat(f.c_str(), &st);
                files.push_back(
                    {f, static_cast<int64_t>(st.st_size),
                     static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
            }
    return {{"format", kShardVersion},
            {"manifest_hash", fmt::format("{:016x}", fnv1a64(file_bytes(m.path)))},
            {"tokenizer_hash", fmt::format("{:016x}", tok_hash)},
            {"vocab_size", tok.vocab_size()},
            {"dedup", o.dedup},
            {"repetition_filter", o.repetition_filter},
            {"max_shard_tokens", o.max_shard_tokens},
            {"files", files}};
}

void write_text_atomic(const std::string& path, const std::string& text) {
    // Through POSIX calls rather than a stream: every short write, the fsync and the close report
    // their errno, so a full disk or a read-only directory is named as such, and a failed write
    // leaves no ".tmp" behind.
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("data", "{}: cannot create: {}", tmp, std::strerror(errno));
    size_t done = 0;
    int err = 0;
    while (done < text.size() && err == 0) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n > 0)
            done += static_cast<size_t>(n);
        else if (n == 0)
            err = ENOSPC;  // a regular file that accepts nothing more is full
        else if (errno != EINTR)
            err = errno;
    }
    if (err == 0 && ::fsync(fd) != 0) err = errno;
    if (::close(fd) != 0 && err == 0) err = errno;
    if (err != 0) {
        ::unlink(tmp.c_str());
        fail("data", "{}: write failed: {}", tmp, std::strerror(err));
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        ::unlink(tmp.c_str());
        fail("data", "{}: cannot rename to {}: {}", tmp, path, ec.message());
    }
}

}  // namespace

nlohmann::json read_prepared_stats(const std::string& dir) {
    std::string path = (fs::path(dir) / "stats.json").string();
    if (!is_file(path))
        fail("data",
             "{}: expected the stats.json of a prepared directory, found none (run "
             "polymoe prepare first)",
             path);
    try {
        return nlohmann::json::parse(file_bytes(path));
    } catch (const nlohmann::json::exception& e) {
        fail("data", "{}: expected JSON, found an error: {}", path, e.what());
    }
}

std::vector<std::string> select_languages(const nlohmann::json& stats,
                                          const std::vector<std::string>& wanted,
                                          const std::string& dir,
                                          std::string_view component) {
    std::vector<std::string> codes;
    for (const auto& [code, l] : stats.at("languages").items())
        if (wanted.empty() || std::find(wanted.begin(), wanted.end(), code) != wanted.end())
            codes.push_back(code);
    for (const auto& want : wanted)
        if (std::find(codes.begin(), codes.end(), want) == codes.end())
            fail(component, "--languages: expected languages of {}, found \"{}\" (not prepared)",
                 dir, want);
    return codes;
}

PrepareResult prepare(const Manifest& m, const tokenizer::Tokenizer& tok, const PrepareOptions& o) {
    Timer timer;
    PrepareResult res;
    std::error_code ec;
    fs::create_directories(o.out_dir, ec);
    if (ec) fail("data", "{}: cannot create the output directory: {}", o.out_dir, ec.message());
    const uint64_t tok_hash = fnv1a64(file_bytes(o.tokenizer_path));
    const auto fp = fingerprint(m, tok, o, tok_hash);
    const std::string stats_path = (fs::path(o.out_dir) / "stats.json").string();
    if (!o.force && is_file(stats_path)) {
        try {
            auto old = nlohmann::json::parse(file_bytes(stats_path));
            bool complete = old.value("fingerprint", nlohmann::json()) == nlohmann::json(fp);
            for (const auto& l : m.languages)
                for (const char* split : {"train", "heldout"})
                    complete =
                        complete &&
                        is_file((fs::path(o.out_dir) / shard_file_name(l.info.code, split, 0))
                                    .string());
            if (complete) {
                res.up_to_date = true;
                res.stats = old;
                return res;
            }
        } catch (const nlohmann::json::exception&) {
            // An unreadable stats.json is simply redone.
        }
    }
    // stats.json marks a complete run: remove it first, and stale shards of these languages.
    fs::remove(stats_path, ec);
    if (ec)
        fail("data", "{}: cannot remove the previous run's stats: {}", stats_path, ec.message());
    // Stale shards are collected first, then removed: removing while iterating is unspecified.
    std::vector<fs::path> stale;
    for (fs::directory_iterator it(o.out_dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        for (const auto& l : m.languages)
            if (name.rfind(l.info.code + ".", 0) == 0 && name.size() > 6 &&
                name.compare(name.size() - 6, 6, ".shard") == 0 &&
                std::count(name.begin(), name.end(), '.') == 3)
                stale.push_back(it->path());
    }
    if (ec) fail("data", "{}: cannot list the output directory: {}", o.out_dir, ec.message());
    for (const fs::path& p : stale)
        if (fs::remove(p, ec); ec)
            fail("data", "{}: cannot remove a stale shard: {}", p.string(), ec.message());

    int64_t total_bytes = 0;
    for (const auto& l : m.languages)
        for (const auto& s : l.sources)
            for (const auto& f : s.files)
                total_bytes += size_of(f);
    Progress progress("prepare", static_cast<double>(total_bytes), "MB", 1e6);
    int64_t bytes_done = 0;

    const int32_t V = tok.vocab_size();
    const int nl = static_cast<int>(m.languages.size());
    std::vector<std::vector<uint8_t>> used(nl, std::vector<uint8_t>(static_cast<size_t>(V), 0));
    nlohmann::ordered_json langs_json = nlohmann::ordered_json::object();
    SplitStats all_total;

    for (int li = 0; li < nl; ++li) {
        const LanguageSpec& L = m.languages[li];
        progress.set_label("prepare " + L.info.code);
        ShardMeta meta{L.info, "train", fs::path(o.tokenizer_path).filename().string(), tok_hash,
                       V};
        SplitWriter train(o.out_dir, meta, o.max_shard_tokens);
        meta.split = "heldout";
        SplitWriter held(o.out_dir, meta, o.max_shard_tokens);
        SplitStats st_train, st_held;
        std::map<std::string, int64_t> dropped{{"empty", 0},
                                               {"invalid_utf8", 0},
                                               {"nul_byte", 0},
                                               {"duplicate", 0},
                                               {"repetition", 0}};
        std::set<std::pair<uint64_t, uint64_t>> seen;
        std::vector<Pending> batch;
        int64_t batch_size = 0, doc_index = 0;

        auto flush = [&]() {
            const int64_t n = static_cast<int64_t>(batch.size());
            std::vector<char> keep(batch.size(), 1);
            std::vector<int64_t> chars(batch.size(), 0);
            parallel_for(n, 1, [&](int64_t b, int64_t e, int) {
                for (int64_t i = b; i < e; ++i) {
                    utf8_valid(batch[i].text, &chars[i]);
                    if (o.repetition_filter && repetition_violation(batch[i].text)) keep[i] = 0;
                }
            });
            std::vector<std::string_view> views;
            for (int64_t i = 0; i < n; ++i)
                if (keep[i])
                    views.push_back(batch[i].text);
                else
                    dropped["repetition"]++;
            auto enc = tok.encode_batch(views);
            size_t k = 0;
            for (int64_t i = 0; i < n; ++i) {
                if (!keep[i]) continue;
                const auto& ids = enc[k++].ids;
                bool h = m.heldout.is_heldout(batch[i].index, batch[i].passage);
                (h ? held : train).add(ids, batch[i].passage);
                SplitStats& s = h ? st_held : st_train;
                s.documents++;
                s.bytes += static_cast<int64_t>(batch[i].text.size());
                s.chars += chars[i];
                s.tokens += static_cast<int64_t>(ids.size());
                for (int32_t id : ids)
                    used[li][static_cast<size_t>(id)] = 1;
            }
            batch.clear();
            batch_size = 0;
        };

        for (const auto& src : L.sources) {
            for (const auto& file : src.files) {
                DocumentReader r(src, file);
                Document d;
                while (r.next(&d)) {
                    const int64_t index = doc_index++;
                    if (d.problem != DocProblem::kNone) {
                        dropped[problem_name(d.problem)]++;
                        continue;
                    }
                    if (o.dedup && !seen.insert(text_hash(d.text)).second) {
                        dropped["duplicate"]++;
                        continue;
                    }
                    res.bytes_read += static_cast<int64_t>(d.text.size());
                    batch_size += static_cast<int64_t>(d.text.size());
                    batch.push_back({std::move(d.text), d.passage, index});
                    if (batch_size >= o.batch_bytes) flush();
                    progress.update(
                        static_cast<double>(bytes_done + static_cast<int64_t>(r.compressed_pos())));
                }
                bytes_done += size_of(file);
                progress.update(static_cast<double>(bytes_done));
            }
        }
        flush();
        train.finish();
        held.finish();
        SplitStats total = st_train;
        total.add(st_held);
        all_total.add(total);
        nlohmann::ordered_json info = {{"name", L.info.name},
                                       {"script", L.info.script},
                                       {"family", L.info.family},
                                       {"stage", L.info.stage},
                                       {"related", L.info.related}};
        langs_json[L.info.code] = {
            {"info", info},
            {"train", st_train.json()},
            {"heldout", st_held.json()},
            {"total", total.json()},
            {"dropped", dropped},
            {"shards", {{"train", train.shards()}, {"heldout", held.shards()}}}};
    }
    progress.finish();

    // Vocabulary overlap: share of a's distinct ids that b also uses.
    std::vector<int64_t> distinct(nl, 0);
    for (int a = 0; a < nl; ++a)
        for (uint8_t u : used[a])
            distinct[a] += u;
    nlohmann::ordered_json overlap = nlohmann::ordered_json::object();
    for (int a = 0; a < nl; ++a) {
        nlohmann::ordered_json row = nlohmann::ordered_json::object();
        for (int b = 0; b < nl; ++b) {
            int64_t both = 0;
            for (size_t v = 0; v < used[a].size(); ++v)
                both += used[a][v] & used[b][v];
            row[m.languages[b].info.code] =
                distinct[a] ? static_cast<double>(both) / static_cast<double>(distinct[a]) : 0.0;
        }
        overlap[m.languages[a].info.code] = row;
        langs_json[m.languages[a].info.code]["distinct_token_ids"] = distinct[a];
    }

    nlohmann::ordered_json stats = {
        {"schema_version", 1},
        {"manifest", m.path},
        {"tokenizer", fs::path(o.tokenizer_path).filename().string()},
        {"vocab_size", V},
        {"eos_id", tok.token_to_id("<|endoftext|>")},
        {"heldout_rule", m.heldout.passages.empty()
                             ? nlohmann::ordered_json{{"fraction", m.heldout.fraction}}
                             : nlohmann::ordered_json{{"passages", m.heldout.passages}}},
        {"languages", langs_json},
        {"total", all_total.json()},
        {"vocab_overlap",
         {{"definition",
           "share of the row language's distinct token ids that also occur in the "
           "column language (all splits)"},
          {"matrix", overlap}}},
        {"fingerprint", fp}};
    write_text_atomic(stats_path, stats.dump(2) + "\n");
    res.stats = nlohmann::json::parse(stats.dump());
    res.seconds = timer.seconds();
    return res;
}

}  // namespace polymoe::data
