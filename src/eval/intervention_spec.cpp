// parse_interventions (intervention_spec.h): small hand parser over "ITEMS[@LAYERS]".
#include "eval/intervention_spec.h"

#include <charconv>
#include <cmath>
#include <set>

#include "core/error.h"

namespace polymoe::eval {

namespace {

[[noreturn]] void bad(const std::string& flag, const std::string& spec, const std::string& why) {
    throw UsageError(fmt::format("[eval] --{} {}: {}", flag, spec, why));
}

int64_t parse_int(const std::string& flag,
                  const std::string& spec,
                  std::string_view s,
                  const char* what) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty())
        bad(flag, spec, fmt::format("expected an integer {}, found '{}'", what, s));
    return v;
}

struct Parsed {
    std::vector<std::string> items;
    int64_t first = 0, last = 0;
};

// Splits "a,b,c@F:L" into items and the layer range (default: all L layers).
Parsed split(const std::string& flag, const std::string& spec, int64_t L) {
    Parsed p;
    p.last = L - 1;
    std::string items = spec;
    if (const size_t at = spec.find('@'); at != std::string::npos) {
        items = spec.substr(0, at);
        const std::string range = spec.substr(at + 1);
        const size_t colon = range.find(':');
        if (colon == std::string::npos) {
            p.first = p.last = parse_int(flag, spec, range, "layer");
        } else {
            p.first = parse_int(flag, spec, std::string_view(range).substr(0, colon), "layer");
            p.last = parse_int(flag, spec, std::string_view(range).substr(colon + 1), "layer");
        }
        if (p.first < 0 || p.last >= L || p.first > p.last)
            bad(flag, spec,
                fmt::format("expected layers FIRST:LAST with 0 <= FIRST <= LAST <= {}, found "
                            "{}:{}",
                            L - 1, p.first, p.last));
    }
    size_t start = 0;
    while (start <= items.size()) {
        const size_t comma = items.find(',', start);
        const std::string item =
            items.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item.empty()) bad(flag, spec, "expected a comma-separated list, found an empty item");
        p.items.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return p;
}

int64_t expert_id(const std::string& flag, const std::string& spec, std::string_view s, int64_t E) {
    const int64_t e = parse_int(flag, spec, s, "expert id");
    if (e < 0 || e >= E)
        bad(flag, spec, fmt::format("expected expert ids in [0, {}), found {}", E, e));
    return e;
}

}  // namespace

model::Intervention parse_interventions(const InterventionSpecs& s,
                                        int64_t L,
                                        int64_t E,
                                        int64_t K) {
    model::Intervention iv;
    iv.layers.resize(static_cast<size_t>(L));
    auto layer_vec = [&](std::vector<uint8_t>& v) {
        if (v.empty()) v.assign(static_cast<size_t>(E), 0);
        return &v;
    };
    for (const auto& [flag, list] :
         {std::pair{"mask", &s.mask}, std::pair{"drop", &s.drop}, std::pair{"force", &s.force}}) {
        for (const std::string& spec : *list) {
            const Parsed p = split(flag, spec, L);
            std::set<int64_t> experts;
            for (const std::string& item : p.items)
                if (!experts.insert(expert_id(flag, spec, item, E)).second)
                    bad(flag, spec, fmt::format("expert {} is listed twice", item));
            if (std::string_view(flag) == "force" && static_cast<int64_t>(experts.size()) < K)
                bad(flag, spec,
                    fmt::format("expected at least K = {} experts to route to, found {}", K,
                                experts.size()));
            for (int64_t l = p.first; l <= p.last; ++l) {
                model::LayerIntervention& li = iv.layers[static_cast<size_t>(l)];
                if (std::string_view(flag) == "drop") {
                    for (int64_t e : experts)
                        (*layer_vec(li.drop))[static_cast<size_t>(e)] = 1;
                } else if (std::string_view(flag) == "mask") {
                    for (int64_t e : experts)
                        (*layer_vec(li.mask))[static_cast<size_t>(e)] = 1;
                } else {  // force = mask the complement
                    for (int64_t e = 0; e < E; ++e)
                        if (!experts.count(e)) (*layer_vec(li.mask))[static_cast<size_t>(e)] = 1;
                }
            }
        }
    }
    for (const std::string& spec : s.steer) {
        const Parsed p = split("steer", spec, L);
        std::vector<std::pair<int64_t, float>> add;
        for (const std::string& item : p.items) {
            const size_t eq = item.find('=');
            if (eq == std::string::npos)
                bad("steer", spec, fmt::format("expected EXPERT=LAMBDA, found '{}'", item));
            const int64_t e = expert_id("steer", spec, std::string_view(item).substr(0, eq), E);
            const std::string lam = item.substr(eq + 1);
            char* end = nullptr;
            const double v = std::strtod(lam.c_str(), &end);
            if (lam.empty() || end != lam.c_str() + lam.size() || !std::isfinite(v))
                bad("steer", spec,
                    fmt::format("expected a finite number after '=', found '{}'", lam));
            add.emplace_back(e, static_cast<float>(v));
        }
        for (int64_t l = p.first; l <= p.last; ++l) {
            auto& st = iv.layers[static_cast<size_t>(l)].steer;
            if (st.empty()) st.assign(static_cast<size_t>(E), 0.0f);
            for (const auto& [e, v] : add)
                st[static_cast<size_t>(e)] += v;
        }
    }
    // A layer whose candidates are all masked cannot route: name it.
    for (int64_t l = 0; l < L; ++l) {
        const auto& m = iv.layers[static_cast<size_t>(l)].mask;
        if (m.empty()) continue;
        int64_t kept = 0;
        for (uint8_t x : m)
            kept += x == 0;
        if (kept < K)
            throw UsageError(fmt::format(
                "[eval] interventions leave {} of {} experts at layer {}; top-{} routing needs "
                "at least {}",
                kept, E, l, K, K));
    }
    return iv;
}

}  // namespace polymoe::eval
