// Count-table analysis (see count_table.h): read and validate the table, build one pseudo-unit
// per group so that trace_report() computes every per-group statistic with the code traces use,
// and label the section as a count table.
#include "analysis/count_table.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "io/npz.h"

namespace polymoe::analysis {

namespace {

constexpr std::string_view kComponent = "counts";

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// K from a counts key ending in "top<digits>" (counts_top8 -> 8), or 0. Parsed by hand: GCC 12's
// <regex> trips -Wmaybe-uninitialized under the sanitizer build.
int top_k_suffix(const std::string& key) {
    size_t d = key.size();
    while (d > 0 && key[d - 1] >= '0' && key[d - 1] <= '9')
        --d;
    if (d == key.size() || key.size() - d > 5 || d < 3 || key.compare(d - 3, 3, "top") != 0)
        return 0;
    return std::stoi(key.substr(d));
}

int64_t read_scalar(const io::NpzReader& z, const std::string& key, int64_t lo, int64_t hi) {
    const io::NpyArray a = z.read(key);
    if (a.numel() != 1 || a.shape.size() > 1 || a.is_unicode())
        fail(kComponent,
             "{}: key '{}': expected an integer scalar (shape []), found '{}' of shape {}",
             z.path(), key, a.descr, shape_text(a.shape));
    const int64_t v = a.get_int(0);
    if (v < lo || v > hi)
        fail(kComponent, "{}: key '{}': expected a value in [{}, {}], found {}", z.path(), key, lo,
             hi, v);
    return v;
}

}  // namespace

CountTable read_count_table(const std::string& path, const CountTableKeys& k) {
    const io::NpzReader z = io::NpzReader::open(path);
    CountTable t;
    t.path = path;
    t.label = std::filesystem::path(path).stem().string();
    auto require = [&](const std::string& key, const char* flag) {
        if (z.has(key)) return;
        std::string all;
        for (const auto& name : z.keys())
            all += (all.empty() ? "" : ", ") + name;
        fail(kComponent, "{}: key '{}': expected it (choose another with {}), found only [{}]",
             path, key, flag, all);
    };
    require(k.counts, "--counts-key");
    require(k.names, "--names-key");
    const io::NpyHeader ch = z.header(k.counts);
    if (ch.shape.size() != 3 || ch.shape[0] < 1 || ch.shape[1] < 1 || ch.shape[2] < 1 ||
        ch.descr[1] == 'U' || ch.shape[2] > 65536)
        fail(kComponent,
             "{}: key '{}': expected a numeric array of shape [n, L, E] (groups, layers, "
             "experts; E <= 65536), found '{}' of shape {}",
             path, k.counts, ch.descr, shape_text(ch.shape));
    const int64_t n = ch.shape[0];
    const int L = static_cast<int>(ch.shape[1]);
    t.E = static_cast<int>(ch.shape[2]);

    const io::NpyArray na = z.read(k.names);
    if (!na.is_unicode() || na.shape != std::vector<int64_t>{n})
        fail(kComponent,
             "{}: key '{}': expected {} group names ('<U..' of shape [{}]), found '{}' "
             "of shape {}",
             path, k.names, n, n, na.descr, shape_text(na.shape));
    for (int64_t i = 0; i < n; ++i) {
        t.names.push_back(na.get_string(i));
        for (int64_t j = 0; j < i; ++j)
            if (t.names[static_cast<size_t>(j)] == t.names.back())
                fail(kComponent, "{}: key '{}': expected distinct names, found '{}' twice", path,
                     k.names, t.names.back());
    }

    t.related.assign(t.names.size(), "");
    if (z.has("related")) {
        const io::NpyArray ra = z.read("related");
        if (!ra.is_unicode() || ra.shape != std::vector<int64_t>{n})
            fail(kComponent,
                 "{}: key 'related': expected {} group names or '' ('<U..' of shape [{}]), found "
                 "'{}' of shape {}",
                 path, n, n, ra.descr, shape_text(ra.shape));
        for (int64_t i = 0; i < n; ++i) {
            t.related[static_cast<size_t>(i)] = ra.get_string(i);
            const std::string& r = t.related[static_cast<size_t>(i)];
            if (!r.empty() && std::find(t.names.begin(), t.names.end(), r) == t.names.end())
                fail(kComponent, "{}: key 'related': expected a name from '{}' or '', found '{}'",
                     path, k.names, r);
        }
        t.keys["related"] = "related";
    }
    if (z.has(k.layers)) {
        const io::NpyArray la = z.read(k.layers);
        if (la.is_unicode() || la.shape != std::vector<int64_t>{L})
            fail(kComponent,
                 "{}: key '{}': expected {} layer numbers (shape [{}]), found '{}' of "
                 "shape {}",
                 path, k.layers, L, L, la.descr, shape_text(la.shape));
        for (int r = 0; r < L; ++r) {
            const int64_t v = la.get_int(r);
            if (v < 0 || v > INT32_MAX)
                fail(kComponent, "{}: key '{}': expected layer numbers >= 0, found {}", path,
                     k.layers, v);
            t.layers.push_back(static_cast<int>(v));
        }
        t.keys["layers"] = k.layers;
    } else {
        for (int r = 0; r < L; ++r)
            t.layers.push_back(r);
        t.keys["layers"] = nullptr;
        t.notes.push_back(fmt::format("key '{}' absent: layers numbered 0..{}", k.layers, L - 1));
    }

    if (z.has("num_experts")) {
        const int64_t e = read_scalar(z, "num_experts", 1, 65536);
        if (e != t.E)
            fail(kComponent,
                 "{}: key 'num_experts': expected {} (the last dimension of '{}'), "
                 "found {}",
                 path, t.E, k.counts, e);
    }

    // K: the flag, the top_k key, or the counts key's "top<K>" suffix (counts_top8).
    if (k.top_k > 0) {
        t.K = k.top_k;
        t.keys["top_k"] = "--top-k";
    } else if (z.has("top_k")) {
        t.K = static_cast<int>(read_scalar(z, "top_k", 1, 65536));
        t.keys["top_k"] = "top_k";
    } else if (top_k_suffix(k.counts) > 0) {
        t.K = top_k_suffix(k.counts);
        t.keys["top_k"] = "suffix of " + k.counts;
        t.notes.push_back(fmt::format("K = {} from the key name '{}'", t.K, k.counts));
    } else {
        fail(kComponent,
             "{}: top_k: expected --top-k, a 'top_k' key or a counts key ending in top<K>, found "
             "none",
             path);
    }
    if (t.K < 1 || t.K > t.E)
        fail(kComponent, "{}: top_k: expected 1..{} (E), found {}", path, t.E, t.K);

    const io::NpyArray ca = z.read(k.counts);
    t.counts.resize(static_cast<size_t>(ca.numel()));
    for (int64_t i = 0; i < ca.numel(); ++i) {
        const double v = ca.get_double(i);
        if (!std::isfinite(v) || v < 0)
            fail(kComponent,
                 "{}: key '{}': expected finite non-negative counts, found {} at [{}, {}, {}]",
                 path, k.counts, v, i / (int64_t{L} * t.E), i / t.E % L, i % t.E);
        if (v != std::trunc(v)) t.integral = false;
        t.counts[static_cast<size_t>(i)] = v;
    }
    t.keys["counts"] = k.counts;
    t.keys["names"] = k.names;
    if (!t.integral)
        t.notes.push_back(
            "counts are not whole numbers (e.g. routing-weight sums): distributions are shares of "
            "that mass, and tokens are estimated as mass / K");
    return t;
}

TraceStats count_table_stats(const CountTable& t) {
    const int L = static_cast<int>(t.layers.size()), E = t.E;
    const size_t RE = static_cast<size_t>(L) * E;
    const int n = static_cast<int>(t.names.size());
    if (t.counts.size() != static_cast<size_t>(n) * RE || t.K < 1 || t.K > E || L < 1)
        fail(kComponent, "{}: expected counts [{}, {}, {}] and 1 <= K <= E, found {} values, K {}",
             t.path, n, L, E, t.counts.size(), t.K);
    TraceStats st;
    st.E = E;
    st.K = t.K;
    st.R = L;
    st.layers = t.layers;
    st.label = t.label;
    st.model = "";
    st.data = t.path;
    st.from_counts = true;
    st.estimator = Estimator::kCounts;
    for (int a = 0; a < n; ++a) {
        const double* row = t.counts.data() + static_cast<size_t>(a) * RE;
        double total = 0;
        for (size_t j = 0; j < RE; ++j)
            total += row[j];
        if (!(total > 0)) {
            st.absent_languages.push_back(t.names[static_cast<size_t>(a)]);
            continue;
        }
        for (int r = 0; r < L; ++r) {
            double layer = 0;
            for (int e = 0; e < E; ++e)
                layer += row[static_cast<size_t>(r) * E + e];
            if (!(layer > 0))
                fail(kComponent,
                     "{}: group '{}': expected counts at every layer, found none at layer {}",
                     t.path, t.names[static_cast<size_t>(a)], t.layers[static_cast<size_t>(r)]);
        }
        const int idx = st.nL++;
        // Tokens: slots / K per layer, averaged over layers.
        const double tokens = total / L / t.K;
        data::LanguageInfo li;
        li.code = li.name = t.names[static_cast<size_t>(a)];
        if (a < static_cast<int>(t.related.size())) li.related = t.related[static_cast<size_t>(a)];
        st.languages.push_back(li);
        Unit u;
        u.doc = idx;
        u.lang = idx;
        u.tokens = std::llround(tokens);
        st.units.push_back(u);
        st.doc_ids.push_back(idx);
        st.doc_lang.push_back(idx);
        st.lang_docs.push_back({idx});
        st.lang_units.push_back({idx});
        st.lang_tokens.push_back(u.tokens);
        st.token_estimate.push_back(tokens);
        st.tokens += u.tokens;
        st.unit_sums.insert(st.unit_sums.end(), row, row + RE);
    }
    if (st.nL == 0)
        fail(kComponent, "{}: expected counts for at least one group, found all zero", t.path);
    st.lang_sums[static_cast<size_t>(Estimator::kCounts)] = st.unit_sums;
    // A count table holds one kind of sum; the other estimators have no mass (reported null).
    st.lang_sums[static_cast<size_t>(Estimator::kWeight)].assign(st.unit_sums.size(), 0.0);
    st.lang_sums[static_cast<size_t>(Estimator::kRenorm)].assign(st.unit_sums.size(), 0.0);
    st.shared_vocab.assign(static_cast<size_t>(st.nL) * st.nL, 0);
    st.restricted_note = "a count table has no token ids";
    return st;
}

nlohmann::json analyze_counts(const CountTable& t, const AnalysisOptions& options) {
    validate_options(options);
    if (options.estimator != Estimator::kCounts)
        fail(kComponent,
             "estimator: expected counts for a count table (it holds one sum), found {}",
             estimator_name(options.estimator));
    const TraceStats st = count_table_stats(t);
    nlohmann::json section = trace_report(st, options);
    section["source"] = {{"kind", "counts"},
                         {"path", t.path},
                         {"keys", t.keys},
                         {"values", t.integral ? "integer" : "non-integer"},
                         {"tokens", "estimated: slots at a layer / K, mean over layers"},
                         {"notes", t.notes}};
    return {{"schema_version", kAnalysisSchemaVersion},
            {"kind", "polymoe.analysis"},
            {"definitions", definitions()},
            {"options", options_json(options)},
            {"traces", nlohmann::json::array({std::move(section)})},
            {"drift", nlohmann::json::array()}};
}

}  // namespace polymoe::analysis
