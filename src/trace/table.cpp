// Routing-table import and export (see table.h). Import reads each column once into a typed
// vector (validating range and integrality in the same loop, whatever the stored dtype), checks
// the cross-column rules (distinct experts per row, one group per document), then writes trace
// chunks by slicing those vectors: topk_ids is token-major [T][L][K] and a chunk is layer-major
// [L][n][K], so each chunk is one small transpose. Export streams the other way, chunk by chunk,
// so it never holds more than one chunk of the trace in memory.
#include "trace/table.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <unordered_map>

#include "core/check.h"
#include "core/error.h"
#include "core/timer.h"
#include "io/npz.h"
#include "trace/trace_file.h"

namespace polymoe::trace {

namespace {

constexpr std::string_view kComponent = "table";

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// "[t, l, k]" of flat element i of an array of `shape`.
std::string index_text(int64_t i, const std::vector<int64_t>& shape) {
    std::vector<int64_t> idx(shape.size());
    for (size_t d = shape.size(); d-- > 0;) {
        const int64_t n = std::max<int64_t>(shape[d], 1);
        idx[d] = i % n;
        i /= n;
    }
    return shape_text(idx);
}

// Calls f(p) with p a typed pointer to the array's elements (f2 is widened to float first).
template <typename F>
void visit(const io::NpyArray& a, F&& f) {
    const uint8_t* p = a.bytes.data();
    const std::string& d = a.descr;
    if (d == "|u1" || d == "|b1") return f(reinterpret_cast<const uint8_t*>(p));
    if (d == "|i1") return f(reinterpret_cast<const int8_t*>(p));
    if (d == "<i2") return f(reinterpret_cast<const int16_t*>(p));
    if (d == "<u2") return f(reinterpret_cast<const uint16_t*>(p));
    if (d == "<i4") return f(reinterpret_cast<const int32_t*>(p));
    if (d == "<u4") return f(reinterpret_cast<const uint32_t*>(p));
    if (d == "<i8") return f(reinterpret_cast<const int64_t*>(p));
    if (d == "<u8") return f(reinterpret_cast<const uint64_t*>(p));
    if (d == "<f4") return f(reinterpret_cast<const float*>(p));
    if (d == "<f8") return f(reinterpret_cast<const double*>(p));
    if (d == "<f2") {
        std::vector<float> wide(static_cast<size_t>(a.numel()));
        for (int64_t i = 0; i < a.numel(); ++i)
            wide[static_cast<size_t>(i)] = static_cast<float>(a.get_double(i));
        return f(static_cast<const float*>(wide.data()));
    }
    POLYMOE_CHECK(false, "table: unhandled descr {}", d);
}

class Table {
public:
    explicit Table(const std::string& path) : path_(path), z_(io::NpzReader::open(path)) {}

    bool has(const std::string& key) const { return z_.has(key); }
    const io::NpzReader& reader() const { return z_; }

    [[noreturn]] void bad(const std::string& key,
                          const std::string& expected,
                          const std::string& found) const {
        fail(kComponent, "{}: key '{}': expected {}, found {}", path_, key, expected, found);
    }

    // The array under `key` (required: missing is an error listing the keys present).
    io::NpyArray read(const std::string& key, const std::string& meaning) const {
        if (!z_.has(key)) {
            std::string all;
            for (const auto& k : z_.keys())
                all += (all.empty() ? "" : ", ") + k;
            bad(key, "it (" + meaning + ")", "only [" + all + "]");
        }
        return z_.read(key);
    }

    // Checks the shape, before the (possibly large) data is read.
    void expect_shape(const std::string& key,
                      const std::vector<int64_t>& want,
                      const std::string& dims) const {
        const io::NpyHeader h = z_.header(key);
        if (h.shape != want)
            bad(key, "shape " + shape_text(want) + " (" + dims + ")",
                shape_text(h.shape) + " of '" + h.descr + "'");
    }

    // Integer column converted to Out, every value checked to be integral and in [lo, hi].
    template <typename Out>
    std::vector<Out> ints(const io::NpyArray& a,
                          const std::string& key,
                          int64_t lo,
                          int64_t hi,
                          int64_t* max_seen = nullptr) const {
        if (a.is_unicode()) bad(key, "an integer array", "strings '" + a.descr + "'");
        std::vector<Out> out(static_cast<size_t>(a.numel()));
        int64_t bad_at = -1, mx = std::numeric_limits<int64_t>::min();
        std::string bad_value;
        visit(a, [&](const auto* p) {
            using T = std::remove_cv_t<std::remove_pointer_t<decltype(p)>>;
            const int64_t n = a.numel();
            for (int64_t i = 0; i < n; ++i) {
                const T v = p[i];
                int64_t x;
                if constexpr (std::is_floating_point_v<T>) {
                    // In double, where every bound used here (< 2^53) is exact.
                    const double d = static_cast<double>(v);
                    if (!(d == std::trunc(d) && d >= static_cast<double>(lo) &&
                          d <= static_cast<double>(hi))) {
                        bad_at = i, bad_value = fmt::format("{}", v);
                        break;
                    }
                    x = static_cast<int64_t>(v);
                } else if constexpr (std::is_same_v<T, uint64_t>) {
                    if (v > static_cast<uint64_t>(hi)) {
                        bad_at = i, bad_value = fmt::format("{}", v);
                        break;
                    }
                    x = static_cast<int64_t>(v);
                } else {
                    x = static_cast<int64_t>(v);
                    if (x < lo || x > hi) {
                        bad_at = i, bad_value = fmt::format("{}", v);
                        break;
                    }
                }
                mx = std::max(mx, x);
                out[static_cast<size_t>(i)] = static_cast<Out>(x);
            }
        });
        if (bad_at >= 0)
            bad(key, fmt::format("integer values in [{}, {}] ('{}' array)", lo, hi, a.descr),
                bad_value + " at " + index_text(bad_at, a.shape));
        if (max_seen) *max_seen = mx;
        return out;
    }

    // Float column as f32, finite and >= min_value (weights) or any finite value (logits).
    std::vector<float> floats(const io::NpyArray& a,
                              const std::string& key,
                              bool non_negative) const {
        if (a.is_unicode()) bad(key, "a numeric array", "strings '" + a.descr + "'");
        std::vector<float> out(static_cast<size_t>(a.numel()));
        int64_t bad_at = -1;
        double bad_value = 0;
        visit(a, [&](const auto* p) {
            const int64_t n = a.numel();
            for (int64_t i = 0; i < n; ++i) {
                const float v = static_cast<float>(p[i]);
                if (!std::isfinite(v) || (non_negative && v < 0)) {
                    bad_at = i, bad_value = static_cast<double>(p[i]);
                    break;
                }
                out[static_cast<size_t>(i)] = v;
            }
        });
        if (bad_at >= 0)
            bad(key, non_negative ? "finite non-negative values" : "finite values",
                fmt::format("{} at {}", bad_value, index_text(bad_at, a.shape)));
        return out;
    }

    // A 0-d (or one-element) integer.
    int64_t scalar(const std::string& key, int64_t lo, int64_t hi) const {
        const io::NpyArray a = z_.read(key);
        if (a.numel() != 1 || a.shape.size() > 1)
            bad(key, "a scalar (shape [])", "shape " + shape_text(a.shape));
        return ints<int64_t>(a, key, lo, hi)[0];
    }

    std::vector<std::string> strings(const io::NpyArray& a, const std::string& key) const {
        if (!a.is_unicode() || a.shape.size() != 1 || a.shape[0] < 1)
            bad(key, "a non-empty 1-d unicode string array ('<U..', shape [n])",
                "'" + a.descr + "' of shape " + shape_text(a.shape));
        std::vector<std::string> out;
        for (int64_t i = 0; i < a.shape[0]; ++i)
            out.push_back(a.get_string(i));
        return out;
    }

private:
    std::string path_;
    io::NpzReader z_;
};

// Rejects a repeated expert within any (token, layer) row of ids [rows][K], in O(K) per row: a
// 64-bit mask when E <= 64 (OLMoE), else a stamp per expert holding the last row that used it.
void check_distinct(
    const Table& t, const std::vector<uint16_t>& ids, int64_t rows, int K, int L, int E) {
    auto report = [&](int64_t row, uint16_t id) {
        t.bad("topk_ids", "distinct experts within each token's top-k",
              fmt::format("expert {} twice at token {}, layer index {}", id, row / L, row % L));
    };
    if (E <= 64) {
        for (int64_t row = 0; row < rows; ++row) {
            const uint16_t* p = ids.data() + row * K;
            uint64_t seen = 0;
            for (int k = 0; k < K; ++k) {
                const uint64_t bit = uint64_t{1} << p[k];
                if (seen & bit) report(row, p[k]);
                seen |= bit;
            }
        }
        return;
    }
    std::vector<int64_t> stamp(static_cast<size_t>(E), -1);
    for (int64_t row = 0; row < rows; ++row) {
        const uint16_t* p = ids.data() + row * K;
        for (int k = 0; k < K; ++k) {
            if (stamp[p[k]] == row) report(row, p[k]);
            stamp[p[k]] = row;
        }
    }
}

}  // namespace

TableImportResult import_table(const std::string& npz_path,
                               const std::string& trace_path,
                               int64_t chunk_tokens) {
    Timer timer;
    TableImportResult res;
    const Table t(npz_path);
    res.npz_bytes = t.reader().file_bytes();

    const std::vector<std::string> names =
        t.strings(t.read("lang_names", "group names"), "lang_names");
    for (size_t i = 0; i < names.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (names[i] == names[j])
                t.bad("lang_names", "distinct group names",
                      fmt::format("'{}' at {} and {}", names[i], j, i));
    if (names.size() > 65536)
        t.bad("lang_names", "at most 65536 groups", std::to_string(names.size()));

    const io::NpyArray lang_a = t.read("lang", "group of each token");
    if (lang_a.shape.size() != 1 || lang_a.shape[0] < 1)
        t.bad("lang", "shape [T] with T >= 1", shape_text(lang_a.shape));
    const int64_t T = lang_a.shape[0];
    if (T > INT64_C(0xffffffff)) t.bad("lang", "fewer than 2^32 tokens", std::to_string(T));
    const std::vector<uint16_t> lang =
        t.ints<uint16_t>(lang_a, "lang", 0, static_cast<int64_t>(names.size()) - 1);

    // topk_ids: shape checked from the header before the data is read.
    const io::NpyArray ids_a = t.read("topk_ids", "routed experts per token and layer");
    if (ids_a.shape.size() != 3 || ids_a.shape[0] != T || ids_a.shape[1] < 1 || ids_a.shape[2] < 1)
        t.bad("topk_ids", fmt::format("shape [{}, L, K] (T from 'lang', L, K >= 1)", T),
              shape_text(ids_a.shape));
    const int L = static_cast<int>(std::min<int64_t>(ids_a.shape[1], 1 << 20));
    const int K = static_cast<int>(std::min<int64_t>(ids_a.shape[2], 1 << 16));
    int64_t max_id = 0;
    const std::vector<uint16_t> ids = t.ints<uint16_t>(ids_a, "topk_ids", 0, 65535, &max_id);
    int E = static_cast<int>(max_id) + 1;
    if (t.has("num_experts")) {
        E = static_cast<int>(t.scalar("num_experts", 1, 65536));
        if (max_id >= E)
            t.bad("topk_ids", fmt::format("expert ids below num_experts = {}", E),
                  fmt::format("id {}", max_id));
    } else {
        res.notes.push_back(fmt::format("num_experts absent: E = max id + 1 = {}", E));
    }
    if (K > E) t.bad("topk_ids", fmt::format("K <= E = {}", E), fmt::format("K = {}", K));
    check_distinct(t, ids, T * L, K, L, E);

    std::vector<float> weights;
    if (t.has("topk_weights")) {
        t.expect_shape("topk_weights", ids_a.shape, "T, L, K as topk_ids");
        weights = t.floats(t.reader().read("topk_weights"), "topk_weights", true);
    } else {
        res.notes.push_back("topk_weights absent: weights written as 0 (weight estimators null)");
    }
    std::vector<float> logits;
    if (t.has("router_logits")) {
        t.expect_shape("router_logits", {T, L, E}, "T, L, E");
        logits = t.floats(t.reader().read("router_logits"), "router_logits", false);
    }

    auto column = [&](const std::string& key, auto zero, int64_t lo, int64_t hi) {
        using Out = decltype(zero);
        if (!t.has(key)) return std::vector<Out>();
        t.expect_shape(key, {T}, "T");
        return t.ints<Out>(t.reader().read(key), key, lo, hi);
    };
    std::vector<uint32_t> doc = column("doc", uint32_t{0}, 0, INT64_C(0xffffffff));
    std::vector<uint32_t> token = column("token", uint32_t{0}, 0, INT64_C(0xffffffff));
    std::vector<int32_t> passage = column("passage", int32_t{0}, -1, INT32_MAX);
    std::vector<uint32_t> position = column("position", uint32_t{0}, 0, INT64_C(0xffffffff));
    if (doc.empty()) {
        doc.resize(static_cast<size_t>(T));
        for (int64_t i = 0; i < T; ++i)
            doc[static_cast<size_t>(i)] = static_cast<uint32_t>(i);
        res.notes.push_back(
            "doc absent: each token is its own document (bootstrap and permutations then "
            "resample tokens, which understates uncertainty)");
    }
    if (token.empty()) {
        token.assign(static_cast<size_t>(T), 0);
        res.notes.push_back("token absent: token ids written as 0 (vocabulary statistics void)");
    }
    if (passage.empty()) passage.assign(static_cast<size_t>(T), -1);

    // One group per document; position defaults to the order within the document.
    {
        std::unordered_map<uint32_t, std::pair<uint16_t, uint32_t>> seen;  // doc -> (group, next)
        seen.reserve(static_cast<size_t>(std::min<int64_t>(T, 1 << 20)));
        const bool fill_pos = position.empty();
        if (fill_pos) position.resize(static_cast<size_t>(T));
        uint32_t last_doc = 0;
        std::pair<uint16_t, uint32_t>* last = nullptr;
        for (int64_t i = 0; i < T; ++i) {
            const uint32_t d = doc[static_cast<size_t>(i)];
            if (!last || d != last_doc) {
                last = &seen.try_emplace(d, lang[static_cast<size_t>(i)], 0).first->second;
                last_doc = d;
            }
            if (last->first != lang[static_cast<size_t>(i)])
                t.bad("doc", "one group per document",
                      fmt::format("document {} in groups '{}' and '{}' (token {})", d,
                                  names[last->first], names[lang[static_cast<size_t>(i)]], i));
            if (fill_pos) position[static_cast<size_t>(i)] = last->second;
            ++last->second;
        }
        res.documents = static_cast<int64_t>(seen.size());
    }

    TraceHeader h;
    h.num_experts = E;
    h.top_k = K;
    if (t.has("layers")) {
        t.expect_shape("layers", {L}, "L, as topk_ids");
        for (int64_t v : t.ints<int64_t>(t.reader().read("layers"), "layers", 0, INT32_MAX))
            h.layers.push_back(static_cast<int>(v));
    } else {
        for (int r = 0; r < L; ++r)
            h.layers.push_back(r);
    }
    h.rank_ordered = !t.has("rank_ordered") || t.scalar("rank_ordered", 0, 1) != 0;
    h.has_logits = !logits.empty();
    if (t.has("polymoe_header")) {
        // A polymoe export: restore the language metadata, model, label and data exactly.
        const io::NpyArray ha = t.reader().read("polymoe_header");
        if (!ha.is_unicode() || ha.numel() != 1)
            t.bad("polymoe_header", "a 0-d unicode string (the trace's JSON header)",
                  "'" + ha.descr + "' of shape " + shape_text(ha.shape));
        const TraceHeader orig = parse_header_json(ha.get_string(0), npz_path + ":polymoe_header");
        if (orig.languages.size() != names.size())
            t.bad("polymoe_header", fmt::format("{} languages (lang_names)", names.size()),
                  std::to_string(orig.languages.size()));
        for (size_t i = 0; i < names.size(); ++i)
            if (orig.languages[i].code != names[i])
                t.bad("polymoe_header",
                      fmt::format("language {} coded '{}' (lang_names)", i, names[i]),
                      "'" + orig.languages[i].code + "'");
        h.languages = orig.languages;
        h.model = orig.model;
        h.label = orig.label;
        h.data = orig.data;
    } else {
        for (const std::string& n : names)
            h.languages.push_back({n, n, "", "", "", ""});
        h.model = "";
        h.label = std::filesystem::path(npz_path).stem().string();
        h.data = npz_path;
        for (const std::string& n : res.notes)
            h.data += "; " + n;
    }

    if (std::filesystem::path(trace_path).has_parent_path())
        std::filesystem::create_directories(std::filesystem::path(trace_path).parent_path());
    TraceWriter w(trace_path, h);
    ChunkBuffer c;
    c.reset(L, K, E, h.has_logits);
    const int64_t step = std::max<int64_t>(chunk_tokens, 1);
    for (int64_t t0 = 0; t0 < T; t0 += step) {
        const int64_t n = std::min(step, T - t0);
        c.clear();
        const auto b = static_cast<ptrdiff_t>(t0), e = static_cast<ptrdiff_t>(t0 + n);
        c.lang.assign(lang.begin() + b, lang.begin() + e);
        c.doc.assign(doc.begin() + b, doc.begin() + e);
        c.passage.assign(passage.begin() + b, passage.begin() + e);
        c.position.assign(position.begin() + b, position.begin() + e);
        c.token.assign(token.begin() + b, token.begin() + e);
        for (int r = 0; r < L; ++r) {
            c.expert[r].resize(static_cast<size_t>(n * K));
            c.weight[r].assign(static_cast<size_t>(n * K), 0.0f);
            for (int64_t i = 0; i < n; ++i) {
                const size_t src = static_cast<size_t>(((t0 + i) * L + r) * K);
                std::copy_n(ids.data() + src, K, c.expert[r].data() + i * K);
                if (!weights.empty())
                    std::copy_n(weights.data() + src, K, c.weight[r].data() + i * K);
            }
            if (h.has_logits) {
                c.logit[r].resize(static_cast<size_t>(n * E));
                for (int64_t i = 0; i < n; ++i)
                    std::copy_n(logits.data() + static_cast<size_t>(((t0 + i) * L + r) * E), E,
                                c.logit[r].data() + i * E);
            }
        }
        w.write_chunk(c);
    }
    w.finish();
    res.tokens = T;
    res.num_experts = E;
    res.top_k = K;
    res.layers = L;
    res.groups = static_cast<int>(names.size());
    res.trace_bytes = std::filesystem::file_size(trace_path);
    res.seconds = timer.seconds();
    return res;
}

TableExportResult export_table(const std::string& trace_path,
                               const std::string& npz_path,
                               bool compress) {
    Timer timer;
    const TraceFile f = TraceFile::open(trace_path);
    if (f.truncated())
        fail(kComponent, "{}: expected a complete trace, found a torn last chunk", trace_path);
    const TraceView& v = f.view();
    const TraceHeader& h = v.header;
    const int64_t T = v.num_tokens();
    const int R = h.num_layers(), K = h.top_k, E = h.num_experts;
    if (std::filesystem::path(npz_path).has_parent_path())
        std::filesystem::create_directories(std::filesystem::path(npz_path).parent_path());
    io::NpzWriter w(npz_path, compress);

    std::vector<std::string> codes;
    for (const auto& l : h.languages)
        codes.push_back(l.code);
    const io::UnicodeArray names = io::make_unicode_array(codes);
    w.add("lang_names", names.descr, {static_cast<int64_t>(codes.size())}, names.data.data());
    // Per-token columns, one chunk at a time.
    auto col = [&](const char* key, const char* descr, auto member) {
        w.begin(key, descr, {T});
        for (const TraceChunk& c : v.chunks)
            w.write(c.*member, static_cast<size_t>(c.n) * sizeof(*(c.*member)));
        w.end();
    };
    col("lang", "<u2", &TraceChunk::lang);
    col("doc", "<u4", &TraceChunk::doc);
    col("passage", "<i4", &TraceChunk::passage);
    col("position", "<u4", &TraceChunk::position);
    col("token", "<u4", &TraceChunk::token);
    // [R][n][W] chunk blocks -> token-major [n][R][W] rows.
    auto block = [&](const char* key, const char* descr, auto member, int W) {
        using Elem = std::remove_cv_t<
            std::remove_pointer_t<std::remove_cvref_t<decltype(v.chunks.front().*member)>>>;
        w.begin(key, descr, {T, R, W});
        std::vector<Elem> buf;
        for (const TraceChunk& c : v.chunks) {
            buf.resize(static_cast<size_t>(c.n) * R * W);
            const Elem* src = c.*member;
            for (int r = 0; r < R; ++r)
                for (int64_t i = 0; i < c.n; ++i)
                    std::copy_n(src + (r * c.n + i) * W, W, buf.data() + (i * R + r) * W);
            w.write(buf.data(), buf.size() * sizeof(Elem));
        }
        w.end();
    };
    block("topk_ids", "<u2", &TraceChunk::expert, K);
    block("topk_weights", "<f4", &TraceChunk::weight, K);
    if (h.has_logits) block("router_logits", "<f4", &TraceChunk::logits, E);
    std::vector<int64_t> layers(h.layers.begin(), h.layers.end());
    w.add("layers", "<i8", {R}, layers.data());
    const int64_t e64 = E;
    w.add("num_experts", "<i8", {}, &e64);
    const uint8_t ranked = h.rank_ordered ? 1 : 0;
    w.add("rank_ordered", "|b1", {}, &ranked);
    const io::UnicodeArray hj = io::make_unicode_array({header_json(h)});
    w.add("polymoe_header", hj.descr, {}, hj.data.data());
    w.finish();

    TableExportResult res;
    res.tokens = T;
    res.trace_bytes = std::filesystem::file_size(trace_path);
    res.npz_bytes = std::filesystem::file_size(npz_path);
    res.seconds = timer.seconds();
    return res;
}

}  // namespace polymoe::trace
