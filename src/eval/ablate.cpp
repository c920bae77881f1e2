// Expert ablations: specificity matrix with random controls and the reuse test (see ablate.h).
#include "eval/ablate.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"
#include "data/language.h"

namespace polymoe::eval {

namespace {

using Scores = std::vector<std::pair<std::string, std::vector<DocScore>>>;

const std::vector<DocScore>& find_scores(const Scores& s, const std::string& code) {
    for (const auto& [c, d] : s)
        if (c == code) return d;
    fail("ablate", "no held-out documents scored for language {}", code);
}

// ΔCE of one language (point and bootstrap replicates with per-language document resampling
// shared by every intervention, so differences between interventions are paired too).
struct DeltaTable {
    std::vector<double> point;              // [B languages]
    std::vector<std::vector<double>> boot;  // [rep][B]
};

class Resampler {
public:
    Resampler(const Scores& base, int n_boot, uint64_t seed) {
        const uint64_t key = rng_key(seed, "ablate-bootstrap");
        idx_.resize(static_cast<size_t>(n_boot));
        for (int b = 0; b < n_boot; ++b)
            for (size_t l = 0; l < base.size(); ++l) {
                const size_t n = base[l].second.size();
                std::vector<size_t> v(n);
                for (size_t i = 0; i < n; ++i)
                    v[i] = std::min(
                        n - 1, static_cast<size_t>(
                                   rng_uniform(key, (static_cast<uint64_t>(b) * base.size() + l) *
                                                            1000003ULL +
                                                        i) *
                                   static_cast<double>(n)));
                idx_[static_cast<size_t>(b)].push_back(std::move(v));
            }
    }
    DeltaTable delta(const Scores& base, const Scores& abl) const {
        DeltaTable t;
        auto d = [&](size_t l, const std::vector<size_t>* pick) {
            const auto& b = base[l].second;
            const auto& a = find_scores(abl, base[l].first);
            double diff = 0, tokens = 0;
            const size_t n = pick ? pick->size() : b.size();
            for (size_t k = 0; k < n; ++k) {
                const size_t i = pick ? (*pick)[k] : k;
                diff += a[i].loss_nats - b[i].loss_nats;
                tokens += static_cast<double>(b[i].tokens);
            }
            return tokens > 0 ? diff / tokens : 0.0;
        };
        for (size_t l = 0; l < base.size(); ++l)
            t.point.push_back(d(l, nullptr));
        for (const auto& rep : idx_) {
            std::vector<double> row;
            for (size_t l = 0; l < base.size(); ++l)
                row.push_back(d(l, &rep[l]));
            t.boot.push_back(std::move(row));
        }
        return t;
    }

private:
    std::vector<std::vector<std::vector<size_t>>> idx_;  // [rep][language][k] document indices
};

nlohmann::ordered_json ci_of(double point, std::vector<double> reps) {
    nlohmann::ordered_json j = {{"value", point}};
    if (reps.empty()) {
        j["lo"] = j["hi"] = point;
    } else {
        std::sort(reps.begin(), reps.end());
        auto q = [&](double p) {
            return reps[static_cast<size_t>(
                std::min<double>(static_cast<double>(reps.size() - 1),
                                 std::floor(p * static_cast<double>(reps.size()))))];
        };
        j["lo"] = q(0.025);
        j["hi"] = q(0.975);
    }
    j["n_boot"] = reps.size();
    return j;
}

// Specificity of row a: ΔCE[a][a] − mean_{b≠a} ΔCE[a][b].
double specificity(const std::vector<double>& row, size_t a) {
    double off = 0;
    for (size_t b = 0; b < row.size(); ++b)
        if (b != a) off += row[b];
    return row[a] - (row.size() > 1 ? off / static_cast<double>(row.size() - 1) : 0.0);
}

}  // namespace

std::map<std::string, std::map<int, std::vector<int>>> specific_experts(const nlohmann::json& t) {
    std::map<std::string, std::map<int, std::vector<int>>> out;
    try {
        for (const auto& layer : t.at("specific_experts").at("layers")) {
            const int l = layer.at("layer").get<int>();
            for (const auto& s : layer.at("specific"))
                out[s.at("language").get<std::string>()][l].push_back(s.at("expert").get<int>());
        }
    } catch (const nlohmann::json::exception& e) {
        fail("ablate",
             "analysis: expected specific_experts.layers[].specific[] with expert and "
             "language, found an error: {}",
             e.what());
    }
    return out;
}

std::map<std::string, std::map<int, std::vector<int>>> top_experts(const nlohmann::json& t,
                                                                   int top_m) {
    std::map<std::string, std::map<int, std::vector<int>>> out;
    try {
        const auto& layers = t.at("layers");
        const auto& dist = t.at("distributions").at("estimators").at("counts");
        const auto& langs = t.at("languages");
        for (size_t a = 0; a < langs.size(); ++a)
            for (size_t r = 0; r < layers.size(); ++r) {
                const auto p = dist.at(a).at(r).get<std::vector<double>>();
                std::vector<int> order(p.size());
                for (size_t e = 0; e < p.size(); ++e)
                    order[e] = static_cast<int>(e);
                std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
                    return p[static_cast<size_t>(x)] > p[static_cast<size_t>(y)];
                });
                order.resize(std::min(order.size(), static_cast<size_t>(top_m)));
                out[langs.at(a).at("code").get<std::string>()][layers.at(r).get<int>()] = order;
            }
    } catch (const nlohmann::json::exception& e) {
        fail("ablate",
             "analysis: expected distributions.estimators.counts[language][layer], "
             "found an error: {}",
             e.what());
    }
    return out;
}

nlohmann::ordered_json run_ablations(const model::OlmoeWeights& w,
                                     const tokenizer::Tokenizer& tok,
                                     const std::string& prepared_dir,
                                     const nlohmann::json& analysis,
                                     const AblateOptions& o) {
    Timer timer;
    const auto& c = w.config;
    const int64_t E = c.num_experts;
    // The analysed trace section.
    if (!analysis.contains("traces") || analysis["traces"].empty())
        fail("ablate", "--analysis: expected an analysis.json with traces, found none");
    const nlohmann::json* sec = &analysis["traces"].back();
    if (!o.label.empty()) {
        sec = nullptr;
        std::string have;
        for (const auto& t : analysis["traces"]) {
            have += " " + t.value("label", std::string());
            if (t.value("label", std::string()) == o.label) sec = &t;
        }
        if (!sec)
            fail("ablate", "--label {}: expected one of the analysed traces:{}", o.label, have);
    }
    if (sec->value("num_experts", 0) != E)
        fail("ablate", "--analysis: expected a trace of a model with {} experts, found {}", E,
             sec->value("num_experts", 0));
    if (o.selection != "specific" && o.selection != "top")
        fail("ablate", "--experts: expected specific or top, found \"{}\"", o.selection);
    if (o.selection == "top" && (o.top_m < 1 || o.top_m >= E))
        fail("ablate", "--top-m: expected 1 <= m < {}, found {}", E, o.top_m);
    const auto specific =
        o.selection == "top" ? top_experts(*sec, o.top_m) : specific_experts(*sec);
    std::vector<data::LanguageInfo> langs;
    for (const auto& l : sec->at("languages"))
        langs.push_back({l.at("code"), l.value("name", ""), l.value("script", ""),
                         l.value("family", ""), l.value("stage", ""), l.value("related", "")});
    std::vector<std::pair<int, int>> ranges = o.ranges;
    if (ranges.empty()) ranges.push_back({0, static_cast<int>(c.num_hidden_layers) - 1});

    EvalOptions eo = o.eval;
    eo.languages.clear();
    for (const auto& l : langs)
        eo.languages.push_back(l.code);
    const Scores base = score_documents(w, tok, prepared_dir, eo);
    const Resampler rs(base, o.eval.bootstrap, o.eval.seed);
    int64_t evaluations = 1;
    const size_t nL = base.size();
    std::vector<std::string> codes;
    for (const auto& [code, d] : base)
        codes.push_back(code);

    nlohmann::ordered_json range_results = nlohmann::ordered_json::array();
    for (const auto& [first, last] : ranges) {
        if (first < 0 || last >= c.num_hidden_layers || first > last)
            fail("ablate", "--layers {}:{}: expected a range within [0, {}]", first, last,
                 c.num_hidden_layers - 1);
        nlohmann::ordered_json rows = nlohmann::ordered_json::array();
        std::vector<std::vector<double>> matrix(nL), control(nL);
        std::vector<DeltaTable> tables(nL), ctables(nL);
        std::vector<bool> have(nL, false);
        for (size_t a = 0; a < nL; ++a) {
            auto it = specific.find(codes[a]);
            model::Intervention iv;
            iv.layers.resize(static_cast<size_t>(c.num_hidden_layers));
            std::map<int, int> count;  // layer -> number of experts removed
            if (it != specific.end())
                for (const auto& [layer, experts] : it->second) {
                    if (layer < first || layer > last) continue;
                    auto& v = o.drop ? iv.layers[static_cast<size_t>(layer)].drop
                                     : iv.layers[static_cast<size_t>(layer)].mask;
                    v.assign(static_cast<size_t>(E), 0);
                    for (int e : experts)
                        v[static_cast<size_t>(e)] = 1;
                    count[layer] = static_cast<int>(experts.size());
                }
            if (count.empty()) {
                rows.push_back({{"ablated", codes[a]},
                                {"experts_removed", 0},
                                {"note", "no language-specific experts in this layer range"}});
                continue;
            }
            have[a] = true;
            tables[a] = rs.delta(base, score_documents(w, tok, prepared_dir, eo, &iv));
            ++evaluations;
            // Random control: the same number of experts per layer, uniformly, several seeds.
            DeltaTable mean;
            for (int s = 0; s < o.random_seeds; ++s) {
                model::Intervention rv;
                rv.layers.resize(static_cast<size_t>(c.num_hidden_layers));
                const uint64_t key =
                    rng_key(o.eval.seed + 1000003ULL * static_cast<uint64_t>(s + 1),
                            "ablate-random-" + codes[a]);
                for (const auto& [layer, n] : count) {
                    std::vector<int> perm(static_cast<size_t>(E));
                    for (int e = 0; e < E; ++e)
                        perm[static_cast<size_t>(e)] = e;
                    for (size_t i = perm.size(); i > 1; --i)
                        std::swap(perm[i - 1],
                                  perm[std::min(
                                      i - 1, static_cast<size_t>(
                                                 rng_uniform(
                                                     key, static_cast<uint64_t>(layer) * 4096 + i) *
                                                 static_cast<double>(i)))]);
                    auto& v = o.drop ? rv.layers[static_cast<size_t>(layer)].drop
                                     : rv.layers[static_cast<size_t>(layer)].mask;
                    v.assign(static_cast<size_t>(E), 0);
                    for (int k = 0; k < n; ++k)
                        v[static_cast<size_t>(perm[static_cast<size_t>(k)])] = 1;
                }
                DeltaTable t = rs.delta(base, score_documents(w, tok, prepared_dir, eo, &rv));
                ++evaluations;
                if (s == 0) {
                    mean = t;
                } else {
                    for (size_t b = 0; b < nL; ++b)
                        mean.point[b] += t.point[b];
                    for (size_t r = 0; r < t.boot.size(); ++r)
                        for (size_t b = 0; b < nL; ++b)
                            mean.boot[r][b] += t.boot[r][b];
                }
            }
            const double inv = 1.0 / std::max(1, o.random_seeds);
            for (double& x : mean.point)
                x *= inv;
            for (auto& r : mean.boot)
                for (double& x : r)
                    x *= inv;
            ctables[a] = mean;
            nlohmann::ordered_json delta = nlohmann::ordered_json::object(),
                                   rnd = nlohmann::ordered_json::object();
            for (size_t b = 0; b < nL; ++b) {
                std::vector<double> reps, creps;
                for (const auto& r : tables[a].boot)
                    reps.push_back(r[b]);
                for (const auto& r : mean.boot)
                    creps.push_back(r[b]);
                delta[codes[b]] = ci_of(tables[a].point[b], reps);
                rnd[codes[b]] = ci_of(mean.point[b], creps);
            }
            std::vector<double> sp, csp, excess;
            for (size_t r = 0; r < tables[a].boot.size(); ++r) {
                sp.push_back(specificity(tables[a].boot[r], a));
                csp.push_back(specificity(mean.boot[r], a));
                excess.push_back(sp.back() - csp.back());
            }
            const double sp0 = specificity(tables[a].point, a), csp0 = specificity(mean.point, a);
            nlohmann::ordered_json layers_json = nlohmann::ordered_json::object();
            for (const auto& [layer, n] : count)
                layers_json[std::to_string(layer)] = n;
            rows.push_back({{"ablated", codes[a]},
                            {"experts_removed", layers_json},
                            {"delta_ce", delta},
                            {"delta_ce_random", rnd},
                            {"specificity", ci_of(sp0, sp)},
                            {"specificity_random", ci_of(csp0, csp)},
                            {"specificity_excess", ci_of(sp0 - csp0, excess)}});
        }
        // Reuse: low-resource X related to Y: ΔCE[Y][X] vs mean over unrelated high-resource Z.
        std::set<std::string> hrl;
        for (const auto& l : langs)
            if (!l.related.empty()) hrl.insert(l.related);
        nlohmann::ordered_json reuse = nlohmann::ordered_json::array();
        auto index_of = [&](const std::string& code) {
            for (size_t i = 0; i < nL; ++i)
                if (codes[i] == code) return static_cast<int>(i);
            return -1;
        };
        for (const auto& l : langs) {
            const int x = index_of(l.code), y = index_of(l.related);
            if (l.related.empty() || x < 0 || y < 0 || !have[static_cast<size_t>(y)]) continue;
            std::vector<int> others;
            for (const auto& z : hrl) {
                const int zi = index_of(z);
                if (zi >= 0 && zi != y && have[static_cast<size_t>(zi)]) others.push_back(zi);
            }
            if (others.empty()) continue;
            auto gap = [&](auto get) {
                double u = 0;
                for (int z : others)
                    u += get(static_cast<size_t>(z));
                return get(static_cast<size_t>(y)) - u / static_cast<double>(others.size());
            };
            std::vector<double> reps;
            for (size_t r = 0; r < tables[static_cast<size_t>(y)].boot.size(); ++r)
                reps.push_back(
                    gap([&](size_t a) { return tables[a].boot[r][static_cast<size_t>(x)]; }));
            double unrel = 0;
            for (int z : others)
                unrel += tables[static_cast<size_t>(z)].point[static_cast<size_t>(x)];
            reuse.push_back(
                {{"language", l.code},
                 {"related", l.related},
                 {"delta_ce_related", tables[static_cast<size_t>(y)].point[static_cast<size_t>(x)]},
                 {"delta_ce_unrelated_mean", unrel / static_cast<double>(others.size())},
                 {"unrelated",
                  [&] {
                      std::vector<std::string> v;
                      for (int z : others)
                          v.push_back(codes[static_cast<size_t>(z)]);
                      return v;
                  }()},
                 {"difference",
                  ci_of(gap([&](size_t a) { return tables[a].point[static_cast<size_t>(x)]; }),
                        reps)}});
        }
        range_results.push_back({{"layers", {first, last}}, {"rows", rows}, {"reuse", reuse}});
    }
    nlohmann::ordered_json base_json = nlohmann::ordered_json::object();
    for (const auto& [code, docs] : base)
        base_json[code] = summarize(docs, 0, 0)["ce_nats"]["value"];
    const double secs = timer.seconds();
    return {{"schema_version", 1},
            {"kind", "polymoe.interventions"},
            {"definitions",
             {{"delta_ce",
               "held-out CE per token (nats) of the ablated model minus the base "
               "model, column language B, row = whose experts were removed"},
              {"delta_ce_random",
               "the same with as many uniformly random experts per layer, "
               "averaged over random_seeds"},
              {"specificity", "delta_ce[A][A] - mean over B != A of delta_ce[A][B]"},
              {"specificity_excess", "specificity - specificity of the random control"},
              {"reuse.difference",
               "delta_ce[related][X] - mean over unrelated high-resource Z "
               "of delta_ce[Z][X]"},
              {"ci",
               "95% percentile bootstrap resampling each language's documents, paired "
               "across interventions"}}},
            {"units", "nats per token"},
            {"mode", o.drop ? "drop" : "mask"},
            {"selection", o.selection},
            {"top_m", o.selection == "top" ? nlohmann::ordered_json(o.top_m)
                                           : nlohmann::ordered_json(nullptr)},
            {"trace_label", sec->value("label", std::string())},
            {"random_seeds", o.random_seeds},
            {"bootstrap", o.eval.bootstrap},
            {"base_ce", base_json},
            {"ranges", range_results},
            {"evaluations", evaluations},
            {"seconds", secs},
            {"evaluations_per_s", secs > 0 ? static_cast<double>(evaluations) / secs : 0.0}};
}

}  // namespace polymoe::eval
