// Tidy CSV export of an analyze() result: one file per table, one row per observation, one column
// per variable; CIs as value/lo/hi columns, undefined numbers as empty fields. Numbers are written
// in the shortest form that reads back to the same double ({fmt}'s default), so the CSV files
// carry exactly the JSON's values.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "analysis/analysis.h"
#include "core/error.h"

namespace polymoe::analysis {

namespace {

using nlohmann::json;
constexpr std::string_view kComponent = "analysis";

std::string cell(const json& v) {
    if (v.is_null()) return "";
    if (v.is_number_integer()) return fmt::format("{}", v.get<int64_t>());
    if (v.is_number_unsigned()) return fmt::format("{}", v.get<uint64_t>());
    if (v.is_number()) return fmt::format("{}", v.get<double>());
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    std::string s = v.is_string() ? v.get<std::string>() : v.dump();
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) {
        if (ch == '"') q += '"';
        q += ch;
    }
    return q + "\"";
}

// Field of an object that may be missing or null.
json get(const json& j, const char* key) {
    const auto it = j.find(key);
    return it == j.end() ? json(nullptr) : *it;
}

class Table {
public:
    Table(const std::string& path, std::vector<std::string> header)
        : path_(path), f_(path, std::ios::trunc), width_(header.size()) {
        if (!f_) fail(kComponent, "{}: cannot open for writing", path);
        write(header);
    }
    void row(const std::vector<json>& cells) {
        std::vector<std::string> s;
        for (const json& c : cells)
            s.push_back(cell(c));
        write(s);
    }
    void close() {
        f_.close();
        if (!f_) fail(kComponent, "{}: write failed", path_);
    }

private:
    void write(const std::vector<std::string>& cells) {
        if (cells.size() != width_)
            fail(kComponent, "{}: row of {} cells, header has {}", path_, cells.size(), width_);
        for (size_t i = 0; i < cells.size(); ++i)
            f_ << (i ? "," : "") << cells[i];
        f_ << '\n';
    }
    std::string path_;
    std::ofstream f_;
    size_t width_;
};

std::vector<json> ci_cells(const json& ci) {
    return {get(ci, "value"), get(ci, "lo"), get(ci, "hi"), get(ci, "n_boot")};
}

void append(std::vector<json>* row, const std::vector<json>& more) {
    row->insert(row->end(), more.begin(), more.end());
}

}  // namespace

std::vector<std::string> write_csv_tables(const json& a, const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) fail(kComponent, "{}: cannot create directory: {}", dir, ec.message());
    auto path = [&](const char* name) { return (std::filesystem::path(dir) / name).string(); };
    std::vector<std::string> written;

    Table dist(path("distributions.csv"),
               {"trace", "estimator", "language", "layer", "expert", "probability"});
    Table ent(path("entropy.csv"),
              {"trace", "estimator", "language", "layer", "bits", "lo", "hi", "n_boot"});
    Table jsd(path("jsd.csv"), {"trace",
                                "layer",
                                "language_a",
                                "language_b",
                                "bits",
                                "bits_lo",
                                "bits_hi",
                                "n_boot",
                                "nats",
                                "nats_lo",
                                "nats_hi",
                                "normalized",
                                "normalized_lo",
                                "normalized_hi",
                                "null_mean",
                                "null_p95",
                                "p_value",
                                "n_perm",
                                "split_half_a",
                                "split_half_b",
                                "paired_mean",
                                "paired_lo",
                                "paired_hi",
                                "paired_passages",
                                "paired_aggregate",
                                "restricted_bits",
                                "bits_counts",
                                "bits_weight",
                                "bits_renorm"});
    Table spec(path("specialisation.csv"),
               {"trace", "layer", "nmi", "nmi_lo", "nmi_hi", "n_boot", "nmi_null_mean",
                "nmi_null_p95", "nmi_p_value", "nmi_balanced", "nmi_balanced_lo", "nmi_balanced_hi",
                "nmi_balanced_p_value", "num_specific", "num_specific_lo", "num_specific_hi",
                "num_shared", "num_shared_lo", "num_shared_hi"});
    Table trend(path("specialisation_trend.csv"),
                {"trace", "statistic", "value", "lo", "hi", "n_boot"});
    Table experts(path("specific_experts.csv"),
                  {"trace", "layer", "expert", "kind", "language", "share", "stability"});
    Table reuse(path("reuse.csv"),
                {"trace", "language", "related", "layer", "kind", "target", "share", "lo", "hi",
                 "n_boot", "random_mean", "random_p95", "p_value_related"});
    Table drift(path("drift.csv"), {"from", "to", "language", "layer", "overlap", "overlap_lo",
                                    "overlap_hi", "jsd_bits", "jsd_lo", "jsd_hi", "n_boot"});

    for (const json& t : a.at("traces")) {
        const json label = t.at("label");
        const json& langs = t.at("languages");
        const json& layers = t.at("layers");
        const size_t nL = langs.size(), R = layers.size();
        auto code = [&](size_t i) { return langs[i].at("code"); };
        const std::string primary = t.at("estimator");
        for (const auto& [est, table] : t.at("distributions").at("estimators").items())
            for (size_t l = 0; l < nL; ++l)
                for (size_t r = 0; r < R; ++r) {
                    const json& p = table[l][r];
                    for (size_t e = 0; e < p.size(); ++e)
                        dist.row({label, est, code(l), layers[r], e, p[e]});
                }
        const json& en = t.at("entropy");
        for (const auto& [est, table] : en.at("by_estimator").items())
            for (size_t l = 0; l < nL; ++l)
                for (size_t r = 0; r < R; ++r) {
                    std::vector<json> row = {label, est, code(l), layers[r]};
                    if (est == primary)
                        append(&row, ci_cells(en.at("values")[l][r]));
                    else
                        append(&row, {table[l][r], nullptr, nullptr, nullptr});
                    ent.row(row);
                }
        // Paired and restricted values keyed by (layer, a, b).
        const json& paired = t.at("paired_jsd").at("pairs");
        const json& script = t.at("script");
        for (size_t r = 0; r < R; ++r) {
            const json& L = t.at("jsd").at("layers")[r];
            for (size_t x = 0; x < nL; ++x)
                for (size_t y = x + 1; y < nL; ++y) {
                    std::vector<json> row = {label, layers[r], code(x), code(y)};
                    append(&row, ci_cells(L.at("bits")[x][y]));
                    const json& n = L.at("nats")[x][y];
                    const json& z = L.at("normalized")[x][y];
                    const json& p = L.at("permutation")[x][y];
                    append(&row, {get(n, "value"), get(n, "lo"), get(n, "hi"), get(z, "value"),
                                  get(z, "lo"), get(z, "hi"), get(p, "null_mean"),
                                  get(p, "null_p95"), get(p, "p_value"), get(p, "n_perm"),
                                  L.at("split_half_bits")[x], L.at("split_half_bits")[y]});
                    std::vector<json> pc = {nullptr, nullptr, nullptr, nullptr, nullptr};
                    for (const json& pr : paired)
                        if (pr.at("a") == code(x) && pr.at("b") == code(y)) {
                            const json& m = pr.at("layers")[r].at("mean");
                            pc = {get(m, "value"), get(m, "lo"), get(m, "hi"), pr.at("passages"),
                                  pr.at("layers")[r].at("aggregate")};
                        }
                    append(&row, pc);
                    row.push_back(script.at("layers")[r].at("restricted_bits")[x][y]);
                    const json& by = L.at("by_estimator_bits");
                    append(&row,
                           {by.at("counts")[x][y], by.at("weight")[x][y], by.at("renorm")[x][y]});
                    jsd.row(row);
                }
        }
        const json& sp = t.at("specialization");
        const json& se = t.at("specific_experts");
        for (size_t r = 0; r < R; ++r) {
            const json& L = sp.at("layers")[r];
            std::vector<json> row = {label, layers[r]};
            append(&row, ci_cells(L.at("nmi")));
            const json& p = L.at("permutation");
            const json& nb = L.at("nmi_balanced");
            append(&row, {p.at("null_mean"), p.at("null_p95"), p.at("p_value"), nb.at("value"),
                          nb.at("lo"), nb.at("hi"), L.at("permutation_balanced").at("p_value")});
            const json& S = se.at("layers")[r];
            for (const char* k : {"num_specific", "num_shared"})
                append(&row, {S.at(k).at("value"), S.at(k).at("lo"), S.at(k).at("hi")});
            spec.row(row);
            for (const json& x : S.at("specific"))
                experts.row({label, layers[r], x.at("expert"), "specific", x.at("language"),
                             x.at("share"), x.at("stability")});
            for (const json& x : S.at("shared"))
                experts.row({label, layers[r], x.at("expert"), "shared", nullptr,
                             x.at("min_probability"), x.at("stability")});
        }
        for (const auto& [k, v] : sp.at("trend").items())
            if (v.is_object()) {
                std::vector<json> row = {label, k};
                append(&row, ci_cells(v));
                trend.row(row);
            }
        for (const json& rl : t.at("reuse").at("languages"))
            for (const json& L : rl.at("layers")) {
                const json& rnd = L.at("random");
                auto add = [&](const char* kind, const json& target, const json& ci) {
                    std::vector<json> row = {
                        label, rl.at("language"), rl.at("related"), L.at("layer"), kind, target};
                    append(&row, ci_cells(ci));
                    append(&row, {rnd.at("mean"), rnd.at("p95"), rnd.at("p_value_related")});
                    reuse.row(row);
                };
                add("self", rl.at("language"), L.at("self"));
                add("related", rl.at("related"), L.at("related"));
                for (const json& u : L.at("unrelated"))
                    add("unrelated", u.at("language"), u.at("share"));
                add("margin", nullptr, L.at("margin"));
            }
    }
    for (const json& d : a.at("drift"))
        for (const json& l : d.at("languages"))
            for (const json& L : l.at("layers")) {
                std::vector<json> row = {d.at("from"), d.at("to"), l.at("language"), L.at("layer")};
                const json& o = L.at("overlap");
                const json& j = L.at("jsd_bits");
                append(&row, {o.at("value"), o.at("lo"), o.at("hi"), j.at("value"), j.at("lo"),
                              j.at("hi"), o.at("n_boot")});
                drift.row(row);
            }
    for (Table* t : {&dist, &ent, &jsd, &spec, &trend, &experts, &reuse, &drift})
        t->close();
    for (const char* n :
         {"distributions.csv", "entropy.csv", "jsd.csv", "specialisation.csv",
          "specialisation_trend.csv", "specific_experts.csv", "reuse.csv", "drift.csv"})
        written.push_back(path(n));
    return written;
}

}  // namespace polymoe::analysis
