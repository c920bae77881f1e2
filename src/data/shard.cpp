// Token shard writer and memory-mapped reader (format in shard.h).
#include "data/shard.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace polymoe::data {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'P', 'M', 'S', 'H', 'A', 'R', 'D', '\0'};
constexpr size_t kFixed = 64;

nlohmann::json meta_json(const ShardMeta& m) {
    const auto& l = m.language;
    return {{"language",
             {{"code", l.code},
              {"name", l.name},
              {"script", l.script},
              {"family", l.family},
              {"stage", l.stage},
              {"related", l.related}}},
            {"split", m.split},
            {"tokenizer", m.tokenizer},
            {"vocab_size", m.vocab_size}};
}

template <typename T>
T rd(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

// fwrite that accepts empty ranges (whose data() may be null).
bool write_all(FILE* f, const void* p, size_t size, size_t n) {
    return n == 0 || std::fwrite(p, size, n, f) == n;
}

void put(std::vector<uint8_t>& b, size_t off, const void* v, size_t n) {
    std::memcpy(b.data() + off, v, n);
}

}  // namespace

std::string shard_file_name(const std::string& code, const std::string& split, int index) {
    return fmt::format("{}.{}.{:05d}.shard", code, split, index);
}

ShardWriter::ShardWriter(const std::string& path, const ShardMeta& meta)
    : path_(path), tmp_(path + ".tmp"), meta_(meta) {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) fail("data", "{}: cannot create: {}", tmp_, std::strerror(errno));
    std::string js = meta_json(meta_).dump();
    std::vector<uint8_t> head(kFixed, 0);
    tokens_offset_ = (kFixed + js.size() + 63) / 64 * 64;
    std::vector<uint8_t> pad(tokens_offset_ - kFixed - js.size(), 0);
    // The fixed header is rewritten by finish(); zeros until then mark the file incomplete.
    if (!write_all(f_, head.data(), 1, head.size()) || !write_all(f_, js.data(), 1, js.size()) ||
        !write_all(f_, pad.data(), 1, pad.size()))
        fail("data", "{}: write failed: {}", tmp_, std::strerror(errno));
}

ShardWriter::~ShardWriter() {
    if (f_) std::fclose(f_);
    if (!finished_) std::remove(tmp_.c_str());
}

void ShardWriter::add_document(std::span<const int32_t> ids, int64_t passage) {
    static_assert(sizeof(int32_t) == sizeof(uint32_t));
    if (!write_all(f_, ids.data(), 4, ids.size()))
        fail("data", "{}: write failed: {}", tmp_, std::strerror(errno));
    num_tokens_ += static_cast<int64_t>(ids.size());
    starts_.push_back(static_cast<uint64_t>(num_tokens_));
    passages_.push_back(passage);
}

void ShardWriter::finish() {
    uint64_t end = tokens_offset_ + 4 * static_cast<uint64_t>(num_tokens_);
    uint64_t docs_offset = (end + 7) / 8 * 8;
    std::vector<uint8_t> pad(docs_offset - end, 0);
    bool ok = write_all(f_, pad.data(), 1, pad.size()) &&
              write_all(f_, starts_.data(), 8, starts_.size()) &&
              write_all(f_, passages_.data(), 8, passages_.size());
    std::string js = meta_json(meta_).dump();
    std::vector<uint8_t> head(kFixed, 0);
    uint32_t version = kShardVersion, hb = static_cast<uint32_t>(js.size());
    uint64_t nd = passages_.size(), nt = static_cast<uint64_t>(num_tokens_);
    put(head, 0, kMagic, 8);
    put(head, 8, &version, 4);
    put(head, 12, &hb, 4);
    put(head, 16, &nd, 8);
    put(head, 24, &nt, 8);
    put(head, 32, &meta_.tokenizer_hash, 8);
    put(head, 40, &tokens_offset_, 8);
    put(head, 48, &docs_offset, 8);
    ok = ok && std::fflush(f_) == 0 && std::fseek(f_, 0, SEEK_SET) == 0 &&
         write_all(f_, head.data(), 1, head.size()) && std::fflush(f_) == 0 &&
         ::fsync(fileno(f_)) == 0;
    int err = errno;
    ok = (std::fclose(f_) == 0) && ok;
    f_ = nullptr;
    if (!ok) fail("data", "{}: write failed: {}", tmp_, std::strerror(err));
    std::error_code ec;
    fs::rename(tmp_, path_, ec);
    if (ec) fail("data", "{}: cannot rename to {}: {}", tmp_, path_, ec.message());
    finished_ = true;
}

Shard Shard::open(const std::string& path) {
    Shard s;
    s.file_ = io::MappedFile::open(path, "data");
    const uint8_t* b = s.file_.data();
    const uint64_t size = s.file_.size();
    if (size < kFixed || std::memcmp(b, kMagic, 8) != 0)
        fail("data", "{}: expected a token shard (magic \"PMSHARD\"), found {}", path,
             size < kFixed ? fmt::format("a {}-byte file", size) : "other data");
    uint32_t version = rd<uint32_t>(b + 8), hb = rd<uint32_t>(b + 12);
    if (version != kShardVersion)
        fail("data", "{}: version: expected {}, found {}", path, kShardVersion, version);
    uint64_t nd = rd<uint64_t>(b + 16), nt = rd<uint64_t>(b + 24);
    uint64_t toff = rd<uint64_t>(b + 40), doff = rd<uint64_t>(b + 48);
    // toff and doff are bounded by the size first, so the sums below cannot wrap around 2^64
    // (a wrapped docs_offset could otherwise satisfy the size equation and point anywhere).
    if (toff > size || doff > size || kFixed + hb > size || toff < kFixed + hb || toff % 64 != 0 ||
        doff % 8 != 0 || nt > (size - toff) / 4 || doff < toff + 4 * nt || nd > size / 16 ||
        doff + 8 * (2 * nd + 1) != size)
        fail("data",
             "{}: expected a complete shard of {} documents and {} tokens, found a "
             "truncated or corrupt file ({} bytes)",
             path, nd, nt, size);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(b + kFixed), hb));
        const auto& l = j.at("language");
        s.meta_.language = {l.at("code"),   l.at("name"),  l.at("script"),
                            l.at("family"), l.at("stage"), l.at("related")};
        s.meta_.split = j.at("split");
        s.meta_.tokenizer = j.at("tokenizer");
        // Checked before conversion: nlohmann converts a float such as 5e51 to int64 with
        // undefined behaviour (found by fuzz/shard).
        const auto& v = j.at("vocab_size");
        if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > INT32_MAX)
            fail("data", "{}: header: vocab_size: expected an integer in [1, 2^31), found {}", path,
                 v.dump());
        s.meta_.vocab_size = v.get<int64_t>();
    } catch (const nlohmann::json::exception& e) {
        fail("data", "{}: header: expected the shard JSON header, found an error: {}", path,
             e.what());
    }
    s.meta_.tokenizer_hash = rd<uint64_t>(b + 32);
    s.num_documents_ = static_cast<int64_t>(nd);
    s.num_tokens_ = static_cast<int64_t>(nt);
    s.tokens_ = reinterpret_cast<const uint32_t*>(b + toff);
    s.starts_ = reinterpret_cast<const uint64_t*>(b + doff);
    s.passages_ = reinterpret_cast<const int64_t*>(b + doff + 8 * (nd + 1));
    if (s.starts_[0] != 0 || s.starts_[nd] != nt)
        fail("data", "{}: document table: expected offsets from 0 to {}, found {} to {}", path, nt,
             s.starts_[0], s.starts_[nd]);
    for (uint64_t i = 0; i < nd; ++i)
        if (s.starts_[i + 1] < s.starts_[i])
            fail("data",
                 "{}: document table: expected non-decreasing offsets, found a decrease "
                 "at document {}",
                 path, i);
    return s;
}

ShardSet ShardSet::open(const std::string& dir, const std::string& code, const std::string& split) {
    ShardSet set;
    for (int i = 0;; ++i) {
        fs::path p = fs::path(dir) / shard_file_name(code, split, i);
        if (std::error_code ec; !fs::exists(p, ec)) break;
        set.shards_.push_back(Shard::open(p.string()));
        const Shard& s = set.shards_.back();
        if (s.meta().language.code != code || s.meta().split != split)
            fail("data", "{}: expected language {} split {}, found {} {}", p.string(), code, split,
                 s.meta().language.code, s.meta().split);
        if (s.meta().tokenizer_hash != set.shards_.front().meta().tokenizer_hash)
            fail("data", "{}: expected the tokenizer of {}, found another (hash differs)",
                 p.string(), set.shards_.front().path());
        set.first_doc_.push_back(set.num_documents_);
        set.num_documents_ += s.num_documents();
        set.num_tokens_ += s.num_tokens();
    }
    if (set.shards_.empty())
        fail("data", "{}: expected shards {}, found none (run polymoe prepare?)", dir,
             shard_file_name(code, split, 0));
    return set;
}

std::pair<size_t, int64_t> ShardSet::locate(int64_t i) const {
    size_t k = static_cast<size_t>(std::upper_bound(first_doc_.begin(), first_doc_.end(), i) -
                                   first_doc_.begin() - 1);
    return {k, i - first_doc_[k]};
}

std::span<const uint32_t> ShardSet::document(int64_t i) const {
    auto [k, j] = locate(i);
    return shards_[k].document(j);
}

int64_t ShardSet::passage(int64_t i) const {
    auto [k, j] = locate(i);
    return shards_[k].passage(j);
}

}  // namespace polymoe::data
