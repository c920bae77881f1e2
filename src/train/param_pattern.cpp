// Parameter-name patterns (see param_pattern.h).
#include "train/param_pattern.h"

#include <fnmatch.h>
#include <regex.h>

#include <algorithm>

#include "core/error.h"

namespace polymoe::train {

namespace {

// Index of the '}' closing the '{' at `open`, or npos.
size_t closing_brace(const std::string& s, size_t open) {
    int depth = 0;
    for (size_t i = open; i < s.size(); ++i) {
        if (s[i] == '{') ++depth;
        if (s[i] == '}' && --depth == 0) return i;
    }
    return std::string::npos;
}

// Splits at commas outside braces.
std::vector<std::string> split_top_level(const std::string& s) {
    std::vector<std::string> out(1);
    int depth = 0;
    for (char ch : s) {
        if (ch == '{') ++depth;
        if (ch == '}') --depth;
        if (ch == ',' && depth == 0)
            out.emplace_back();
        else
            out.back() += ch;
    }
    return out;
}

bool parse_int(const std::string& s, int64_t& v) {
    if (s.empty() || s.size() > 9) return false;
    v = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9') return false;
        v = v * 10 + (ch - '0');
    }
    return true;
}

// Brace expansion, shell style: a{b,c}d -> abd acd; {2..4} -> 2 3 4; nested braces expand too.
void expand_braces(const std::string& s,
                   std::vector<std::string>& out,
                   const std::string& pattern,
                   std::string_view flag) {
    const size_t open = s.find('{');
    if (open == std::string::npos) {
        out.push_back(s);
        return;
    }
    const size_t close = closing_brace(s, open);
    if (close == std::string::npos)
        fail("train", "{} '{}': expected a '}}' closing the '{{' in '{}'", flag, pattern, s);
    const std::string head = s.substr(0, open), body = s.substr(open + 1, close - open - 1),
                      tail = s.substr(close + 1);
    std::vector<std::string> alts;
    const size_t dots = body.find("..");
    int64_t lo = 0, hi = 0;
    if (dots != std::string::npos && parse_int(body.substr(0, dots), lo) &&
        parse_int(body.substr(dots + 2), hi)) {
        if (hi < lo || hi - lo > 100000)
            fail("train", "{} '{}': expected a range {{lo..hi}} with lo <= hi, found {{{}}}", flag,
                 pattern, body);
        for (int64_t v = lo; v <= hi; ++v)
            alts.push_back(std::to_string(v));
    } else {
        alts = split_top_level(body);
    }
    for (const auto& a : alts)
        expand_braces(head + a + tail, out, pattern, flag);
    if (out.size() > 1000000)
        fail("train", "{} '{}': expected fewer than a million alternatives after brace expansion",
             flag, pattern);
}

struct Group {
    const char* name;
    std::vector<const char*> globs;
};

const std::vector<Group>& groups() {
    static const std::vector<Group> g = {
        {"all", {"*"}},
        {"routers", {"*.mlp.gate.weight"}},
        {"experts", {"*.mlp.experts.*"}},
        {"attention", {"*.self_attn.*"}},
        {"norms", {"*norm*"}},
        {"embeddings", {"model.embed_tokens.weight", "lm_head.weight"}},
    };
    return g;
}

std::string group_names() {
    std::string s;
    for (const auto& g : groups())
        s += (s.empty() ? "" : ", ") + std::string(g.name);
    return s;
}

// Marks in `hit` the parameters `term` (without '!') matches; returns how many.
int64_t match_term(const model::ParamTable& table,
                   const std::string& term,
                   std::vector<uint8_t>& hit,
                   const std::string& pattern,
                   std::string_view flag) {
    std::fill(hit.begin(), hit.end(), 0);
    const auto& params = table.params();
    if (term.rfind("re:", 0) == 0) {
        // POSIX extended regex (regcomp), anchored so it must match the whole name.
        regex_t re;
        const std::string expr = "^(" + term.substr(3) + ")$";
        if (const int err = regcomp(&re, expr.c_str(), REG_EXTENDED | REG_NOSUB); err != 0) {
            char msg[256];
            regerror(err, &re, msg, sizeof msg);
            fail("train",
                 "{} '{}': term '{}': expected a POSIX extended regular expression, found: {}",
                 flag, pattern, term, msg);
        }
        for (size_t i = 0; i < params.size(); ++i)
            hit[i] = regexec(&re, params[i].name.c_str(), 0, nullptr, 0) == 0;
        regfree(&re);
    } else {
        std::vector<std::string> globs;
        const bool plain_word =
            term.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos;
        if (plain_word) {
            for (const auto& g : groups())
                if (term == g.name) globs.assign(g.globs.begin(), g.globs.end());
            if (globs.empty())
                fail("train",
                     "{} '{}': term '{}': expected a group name ({}), a glob over parameter "
                     "names such as model.layers.*.mlp.gate.weight, or re:REGEX",
                     flag, pattern, term, group_names());
        } else {
            expand_braces(term, globs, pattern, flag);
        }
        for (const auto& g : globs)
            for (size_t i = 0; i < params.size(); ++i)
                if (!hit[i] && fnmatch(g.c_str(), params[i].name.c_str(), 0) == 0) hit[i] = 1;
    }
    int64_t n = 0;
    for (uint8_t h : hit)
        n += h;
    return n;
}

}  // namespace

std::vector<std::string> split_pattern_terms(const std::string& pattern) {
    std::vector<std::string> terms;
    for (auto& t : split_top_level(pattern)) {
        const size_t b = t.find_first_not_of(" \t"), e = t.find_last_not_of(" \t");
        if (b != std::string::npos) terms.push_back(t.substr(b, e - b + 1));
    }
    return terms;
}

ParamSelection select_params(const model::ParamTable& table,
                             const std::string& pattern,
                             std::string_view flag) {
    const auto& params = table.params();
    const std::vector<std::string> terms = split_pattern_terms(pattern);
    if (terms.empty())
        fail("train", "{} '{}': expected at least one term (a glob, re:REGEX or a group: {})", flag,
             pattern, group_names());
    std::vector<uint8_t> include(params.size(), 0), exclude(params.size(), 0), hit(params.size());
    bool any_include = false;
    for (const auto& t : terms) {
        const bool neg = t[0] == '!';
        const std::string body = neg ? t.substr(1) : t;
        if (body.empty()) fail("train", "{} '{}': expected a term after '!'", flag, pattern);
        if (match_term(table, body, hit, pattern, flag) == 0) {
            int layers = 0, experts = 0;
            for (const auto& p : params)
                layers = std::max(layers, p.layer + 1), experts = std::max(experts, p.expert + 1);
            fail("train",
                 "{} '{}': term '{}' matches no parameter (names look like "
                 "model.layers.0.mlp.gate.weight or model.layers.0.mlp.experts.3.up_proj.weight; "
                 "this model has layers 0..{} and experts 0..{})",
                 flag, pattern, t, layers - 1, experts - 1);
        }
        auto& dst = neg ? exclude : include;
        for (size_t i = 0; i < params.size(); ++i)
            dst[i] |= hit[i];
        any_include |= !neg;
    }
    ParamSelection s;
    s.selected.assign(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
        s.selected[i] = (any_include ? include[i] : 1) && !exclude[i];
        if (s.selected[i]) ++s.tensors, s.elements += params[i].numel;
    }
    if (s.tensors == 0)
        fail("train",
             "{} '{}': expected at least one parameter left after the exclusions, found none", flag,
             pattern);
    return s;
}

}  // namespace polymoe::train
