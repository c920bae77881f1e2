// Trace writer and memory-mapped reader (format in trace_file.h).
#include "trace/trace_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/error.h"

namespace polymoe::trace {

namespace {

constexpr char kMagic[8] = {'P', 'M', 'T', 'R', 'A', 'C', 'E', '\0'};
constexpr char kChunkMagic[4] = {'C', 'H', 'N', 'K'};
constexpr size_t kFixed = 64;

size_t pad8(size_t n) {
    return (n + 7) / 8 * 8;
}

template <typename T>
T rd(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

void write_raw(FILE* f, const void* p, size_t n, const std::string& path) {
    if (n > 0 && std::fwrite(p, 1, n, f) != n)
        fail("trace", "{}: write failed: {}", path, std::strerror(errno));
}

void write_pad(FILE* f, size_t n, const std::string& path) {
    static const uint8_t zeros[8] = {0};
    write_raw(f, zeros, pad8(n) - n, path);
}

// Writes n bytes and zero-pads them to a multiple of 8.
void write_or_fail(FILE* f, const void* p, size_t n, const std::string& path) {
    write_raw(f, p, n, path);
    write_pad(f, n, path);
}

}  // namespace

void ChunkBuffer::reset(int R_, int K_, int E_, bool with_logits) {
    R = R_, K = K_, E = E_;
    logits = with_logits;
    expert.assign(static_cast<size_t>(R), {});
    weight.assign(static_cast<size_t>(R), {});
    logit.assign(static_cast<size_t>(R), {});
    clear();
}

void ChunkBuffer::clear() {
    lang.clear(), doc.clear(), passage.clear(), position.clear(), token.clear();
    for (auto& v : expert)
        v.clear();
    for (auto& v : weight)
        v.clear();
    for (auto& v : logit)
        v.clear();
}

std::string header_json(const TraceHeader& h) {
    nlohmann::ordered_json langs = nlohmann::ordered_json::array();
    for (const auto& l : h.languages)
        langs.push_back({{"code", l.code},
                         {"name", l.name},
                         {"script", l.script},
                         {"family", l.family},
                         {"stage", l.stage},
                         {"related", l.related}});
    nlohmann::ordered_json j = {{"layers", h.layers},
                                {"languages", langs},
                                {"model", h.model},
                                {"label", h.label},
                                {"data", h.data}};
    // Only written when false, so captured traces keep their exact header bytes.
    if (!h.rank_ordered) j["rank_ordered"] = false;
    return j.dump();
}

TraceHeader parse_header_json(const std::string& text, const std::string& origin) {
    TraceHeader h;
    try {
        auto j = nlohmann::json::parse(text);
        // Integers checked one by one: nlohmann converts a float such as 1e30 (or an integer
        // beyond int) to int with undefined or implementation-defined results.
        for (const auto& layer : j.at("layers")) {
            if (!layer.is_number_integer() || layer.get<int64_t>() < 0 ||
                layer.get<int64_t>() > 1000000)
                fail("trace",
                     "{}: header: layers: expected model layer indices in [0, 1000000], found {}",
                     origin, layer.dump());
            h.layers.push_back(static_cast<int>(layer.get<int64_t>()));
        }
        for (const auto& l : j.at("languages"))
            h.languages.push_back({l.at("code"), l.at("name"), l.at("script"), l.at("family"),
                                   l.at("stage"), l.at("related")});
        h.model = j.at("model");
        h.label = j.at("label");
        h.data = j.at("data");
        h.rank_ordered = j.value("rank_ordered", true);
    } catch (const nlohmann::json::exception& e) {
        fail("trace", "{}: header: expected the trace JSON header, found an error: {}", origin,
             e.what());
    }
    return h;
}

TraceWriter::TraceWriter(const std::string& path, const TraceHeader& h)
    : path_(path), partial_(path + ".partial"), header_(h) {
    f_ = std::fopen(partial_.c_str(), "wb");
    if (!f_) fail("trace", "{}: cannot create: {}", partial_, std::strerror(errno));
    std::string js = header_json(h);
    uint8_t head[kFixed] = {0};
    std::memcpy(head, kMagic, 8);
    uint32_t v[6] = {kTraceVersion,
                     static_cast<uint32_t>(js.size()),
                     static_cast<uint32_t>(h.num_experts),
                     static_cast<uint32_t>(h.top_k),
                     static_cast<uint32_t>(h.layers.size()),
                     h.has_logits ? 1u : 0u};
    std::memcpy(head + 8, v, sizeof(v));
    js.resize((js.size() + 63) / 64 * 64, '\0');
    if (std::fwrite(head, 1, kFixed, f_) != kFixed ||
        std::fwrite(js.data(), 1, js.size(), f_) != js.size() || std::fflush(f_) != 0)
        fail("trace", "{}: write failed: {}", partial_, std::strerror(errno));
}

TraceWriter::~TraceWriter() {
    if (f_) std::fclose(f_);
}

void TraceWriter::write_chunk(const ChunkBuffer& c) {
    const size_t n = static_cast<size_t>(c.size());
    if (n == 0) return;
    const int R = header_.num_layers(), K = header_.top_k, E = header_.num_experts;
    const size_t RnK = static_cast<size_t>(R) * n * K, RnE = static_cast<size_t>(R) * n * E;
    size_t bytes = 16 + pad8(2 * n) + 4 * pad8(4 * n) + pad8(2 * RnK) + pad8(4 * RnK);
    if (header_.has_logits) bytes += pad8(4 * RnE);
    uint8_t head[16];
    uint32_t nn = static_cast<uint32_t>(n);
    uint64_t b64 = bytes;
    std::memcpy(head, kChunkMagic, 4);
    std::memcpy(head + 4, &nn, 4);
    std::memcpy(head + 8, &b64, 8);
    write_or_fail(f_, head, 16, partial_);
    write_or_fail(f_, c.lang.data(), 2 * n, partial_);
    write_or_fail(f_, c.doc.data(), 4 * n, partial_);
    write_or_fail(f_, c.passage.data(), 4 * n, partial_);
    write_or_fail(f_, c.position.data(), 4 * n, partial_);
    write_or_fail(f_, c.token.data(), 4 * n, partial_);
    // Layers back to back ([R][n][K] dense), padded once per block.
    for (int r = 0; r < R; ++r) {
        POLYMOE_CHECK(c.expert[r].size() == n * K && c.weight[r].size() == n * K,
                      "chunk layer {}: {} experts for {} tokens", r, c.expert[r].size(), n);
        write_raw(f_, c.expert[r].data(), 2 * n * K, partial_);
    }
    write_pad(f_, 2 * RnK, partial_);
    for (int r = 0; r < R; ++r)
        write_raw(f_, c.weight[r].data(), 4 * n * K, partial_);
    write_pad(f_, 4 * RnK, partial_);
    if (header_.has_logits) {
        for (int r = 0; r < R; ++r) {
            POLYMOE_CHECK(c.logit[r].size() == n * E, "chunk layer {}: logits", r);
            write_raw(f_, c.logit[r].data(), 4 * n * E, partial_);
        }
        write_pad(f_, 4 * RnE, partial_);
    }
    if (std::fflush(f_) != 0) fail("trace", "{}: write failed: {}", partial_, std::strerror(errno));
    tokens_ += static_cast<int64_t>(n);
}

void TraceWriter::finish() {
    // Flushed and fsynced before the rename, so the final name never points at a file whose
    // tail is still only in the page cache (or was refused by a full disk).
    if (std::fflush(f_) != 0 || ::fsync(fileno(f_)) != 0) {
        const int err = errno;
        std::fclose(f_);
        f_ = nullptr;
        fail("trace", "{}: write failed: {}", partial_, std::strerror(err));
    }
    if (std::fclose(f_) != 0) {
        f_ = nullptr;
        fail("trace", "{}: close failed: {}", partial_, std::strerror(errno));
    }
    f_ = nullptr;
    std::error_code ec;
    std::filesystem::rename(partial_, path_, ec);
    if (ec) fail("trace", "{}: cannot rename to {}: {}", partial_, path_, ec.message());
}

TraceFile TraceFile::open(const std::string& path) {
    TraceFile t;
    t.file_ = io::MappedFile::open(path, "trace");
    const uint8_t* b = t.file_.data();
    const size_t size = t.file_.size();
    if (size < kFixed || std::memcmp(b, kMagic, 8) != 0)
        fail("trace", "{}: expected a routing trace (magic \"PMTRACE\"), found {}", path,
             size < kFixed ? fmt::format("a {}-byte file", size) : "other data");
    const uint32_t version = rd<uint32_t>(b + 8), hb = rd<uint32_t>(b + 12);
    if (version != kTraceVersion)
        fail("trace", "{}: version: expected {}, found {}", path, kTraceVersion, version);
    // In 64 bits: hb + 63 wraps around in u32 for a hostile hb near 4 GiB.
    const size_t data0 = kFixed + (static_cast<size_t>(hb) + 63) / 64 * 64;
    if (data0 > size)
        fail("trace", "{}: header: expected {} bytes of JSON, found a {}-byte file", path, hb,
             size);
    TraceHeader& h = t.view_.header;
    h = parse_header_json(std::string(reinterpret_cast<const char*>(b + kFixed), hb), path);
    h.num_experts = static_cast<int>(rd<uint32_t>(b + 16));
    h.top_k = static_cast<int>(rd<uint32_t>(b + 20));
    const uint32_t R = rd<uint32_t>(b + 24);
    h.has_logits = (rd<uint32_t>(b + 28) & 1u) != 0;
    // Expert ids are u16, so E <= 65536; read as u32, E and K above 2^31 turn negative above.
    if (R != h.layers.size() || h.top_k <= 0 || h.num_experts <= 0 || h.top_k > h.num_experts ||
        h.num_experts > 65536)
        fail("trace",
             "{}: expected 65536 >= E >= K > 0 and {} recorded layers, found E {} K {} R {}", path,
             h.layers.size(), h.num_experts, h.top_k, R);
    const size_t E = static_cast<size_t>(h.num_experts), K = static_cast<size_t>(h.top_k);
    int64_t max_doc = -1;
    size_t off = data0;
    while (off < size) {
        if (size - off < 16 || std::memcmp(b + off, kChunkMagic, 4) != 0) {
            t.truncated_ = true;
            break;
        }
        const size_t n = rd<uint32_t>(b + off + 4);
        const uint64_t bytes = rd<uint64_t>(b + off + 8);
        // The chunk size in 128 bits: R * n * K (and * E) can pass 2^64 for hostile counts, and a
        // wrapped size could equal `bytes` and let the columns below point past the mapping.
        using u128 = unsigned __int128;
        auto pad8w = [](u128 v) { return (v + 7) / 8 * 8; };
        const u128 RnK128 = u128{R} * n * K;
        u128 want128 = 16 + pad8w(u128{2} * n) + 4 * pad8w(u128{4} * n) + pad8w(2 * RnK128) +
                       pad8w(4 * RnK128);
        if (h.has_logits) want128 += pad8w(u128{4} * R * n * E);
        if (want128 != bytes)
            fail("trace",
                 "{}: chunk at byte {}: expected {} bytes for {} tokens of {} layers x top-{}, "
                 "found {}",
                 path, off,
                 want128 >> 64 ? std::string("more than 2^64")
                               : std::to_string(static_cast<uint64_t>(want128)),
                 n, R, K, bytes);
        const size_t RnK = static_cast<size_t>(RnK128);
        if (bytes > size - off) {
            t.truncated_ = true;
            break;
        }
        TraceChunk c;
        c.n = static_cast<int64_t>(n);
        size_t p = off + 16;
        c.lang = reinterpret_cast<const uint16_t*>(b + p), p += pad8(2 * n);
        c.doc = reinterpret_cast<const uint32_t*>(b + p), p += pad8(4 * n);
        c.passage = reinterpret_cast<const int32_t*>(b + p), p += pad8(4 * n);
        c.position = reinterpret_cast<const uint32_t*>(b + p), p += pad8(4 * n);
        c.token = reinterpret_cast<const uint32_t*>(b + p), p += pad8(4 * n);
        c.expert = reinterpret_cast<const uint16_t*>(b + p), p += pad8(2 * RnK);
        c.weight = reinterpret_cast<const float*>(b + p), p += pad8(4 * RnK);
        if (h.has_logits) c.logits = reinterpret_cast<const float*>(b + p);
        for (size_t i = 0; i < n; ++i) {
            if (c.lang[i] >= h.languages.size())
                fail("trace",
                     "{}: chunk at byte {}: token {}: expected a language index below "
                     "{}, found {}",
                     path, off, i, h.languages.size(), c.lang[i]);
            max_doc = std::max<int64_t>(max_doc, c.doc[i]);
        }
        // Expert ids index per-expert tables (counts [R][E], logits [n][E]) everywhere
        // downstream, so an id >= E would be an out-of-bounds access there; rejected here once.
        for (size_t i = 0; i < RnK; ++i)
            if (c.expert[i] >= E)
                fail("trace",
                     "{}: chunk at byte {}: layer {} token {} rank {}: expected an expert id "
                     "below {} (num_experts), found {}",
                     path, off, i / (n * K), i / K % n, i % K, E, c.expert[i]);
        t.view_.chunks.push_back(c);
        off += bytes;
    }
    h.num_documents = max_doc + 1;
    return t;
}

}  // namespace polymoe::trace
