// Corpus manifest parsing and validation (see manifest.h for the schema).
#include "data/manifest.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "data/yaml_file.h"

namespace polymoe::data {

namespace fs = std::filesystem;

namespace {

struct Ctx {
    std::string file;
    [[noreturn]] void error(const YAML::Node& n, const std::string& msg) const {
        fail("manifest", "{}:{}: {}", file, n.Mark().line + 1, msg);
    }
};

std::string node_kind(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map:
            return "a mapping";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return "\"" + n.Scalar() + "\"";
        case YAML::NodeType::Null:
            return "nothing";
        default:
            return "an undefined node";
    }
}

void require_map(const Ctx& c, const YAML::Node& n, const std::string& what) {
    if (!n.IsMap()) c.error(n, fmt::format("{}: expected a mapping, found {}", what, node_kind(n)));
}

// Checks that every key of map `n` is in `allowed` and appears once.
void check_keys(const Ctx& c,
                const YAML::Node& n,
                const std::string& what,
                const std::vector<std::string>& allowed) {
    std::set<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
        std::string k = it->first.as<std::string>();
        if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
            std::string list;
            for (const auto& a : allowed)
                list += (list.empty() ? "" : ", ") + a;
            c.error(it->first,
                    fmt::format("{}: unknown key \"{}\" (expected one of: {})", what, k, list));
        }
        if (!seen.insert(k).second)
            c.error(it->first, fmt::format("{}: duplicate key \"{}\"", what, k));
    }
}

std::string scalar(const Ctx& c, const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar())
        c.error(n, fmt::format("{}: expected a string, found {}", what, node_kind(n)));
    return n.Scalar();
}

bool boolean(const Ctx& c, const YAML::Node& n, const std::string& what) {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
        c.error(n, fmt::format("{}: expected true or false, found {}", what, node_kind(n)));
    return v;
}

int64_t integer(const Ctx& c, const YAML::Node& n, const std::string& what) {
    try {
        return n.as<int64_t>();
    } catch (const YAML::Exception&) {
        c.error(n, fmt::format("{}: expected an integer, found {}", what, node_kind(n)));
    }
}

std::vector<std::string> expand(const Ctx& c,
                                const YAML::Node& n,
                                const fs::path& base,
                                const std::string& pattern) {
    fs::path p = fs::path(pattern).is_absolute() ? fs::path(pattern) : base / pattern;
    std::string full = p.lexically_normal().string();
    if (full.find_first_of("*?[") == std::string::npos) {
        // The error_code overloads: a path the OS refuses (too long, not a directory on the
        // way) is "no such file" here, not a std::filesystem_error escaping (found by
        // fuzz/manifest).
        std::error_code ec;
        if (!fs::is_regular_file(full, ec))
            c.error(n, fmt::format("source \"{}\": expected an existing file, found none at {}",
                                   pattern, full));
        return {full};
    }
    glob_t g{};
    int rc = ::glob(full.c_str(), 0, nullptr, &g);
    std::vector<std::string> out;
    if (rc == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i)
            if (std::error_code ec; fs::is_regular_file(g.gl_pathv[i], ec))
                out.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (out.empty())
        c.error(n, fmt::format("source \"{}\": expected the glob to match files, found none ({})",
                               pattern, full));
    std::sort(out.begin(), out.end());
    return out;
}

bool has_ext(const std::string& f, const std::string& ext) {
    for (const char* z : {"", ".gz", ".zst"}) {
        std::string e = ext + z;
        if (f.size() >= e.size() && f.compare(f.size() - e.size(), e.size(), e) == 0) return true;
    }
    return false;
}

SourceSpec parse_source(const Ctx& c, const YAML::Node& n, const fs::path& base) {
    SourceSpec s;
    s.line = n.Mark().line + 1;
    YAML::Node path;
    if (n.IsScalar()) {
        path = n;
    } else {
        require_map(c, n, "source");
        check_keys(c, n, "source", {"path", "text_field", "passage_field", "split"});
        if (!n["path"]) c.error(n, "source: expected a \"path\" key, found none");
        path = n["path"];
        if (n["text_field"]) s.text_field = scalar(c, n["text_field"], "text_field");
        if (n["passage_field"]) s.passage_field = scalar(c, n["passage_field"], "passage_field");
        if (n["split"]) {
            std::string v = scalar(c, n["split"], "split");
            if (v == "blocks")
                s.split = TextSplit::kBlocks;
            else if (v == "file")
                s.split = TextSplit::kFile;
            else
                c.error(n["split"], fmt::format("split: expected blocks or file, found \"{}\"", v));
        }
    }
    s.pattern = scalar(c, path, "path");
    s.files = expand(c, path, base, s.pattern);
    for (const auto& f : s.files)
        if (!has_ext(f, ".txt") && !has_ext(f, ".jsonl"))
            c.error(path, fmt::format("source {}: expected a .txt or .jsonl file (optionally .gz "
                                      "or .zst), found another extension",
                                      f));
    return s;
}

}  // namespace

bool HeldoutRule::is_heldout(int64_t index, int64_t passage) const {
    if (!passages.empty())
        return passage >= 0 &&
               std::find(passages.begin(), passages.end(), passage) != passages.end();
    if (fraction <= 0) return false;
    // splitmix64 of the index: a fixed, platform-independent choice of documents.
    return rng_uniform(0, static_cast<uint64_t>(index)) < fraction;
}

std::vector<LanguageInfo> Manifest::language_infos() const {
    std::vector<LanguageInfo> v;
    for (const auto& l : languages)
        v.push_back(l.info);
    return v;
}

namespace {

Manifest parse_manifest(const std::string& path, const YAML::Node& root) {
    Ctx c{path};
    require_map(c, root, "manifest");
    check_keys(c, root, "manifest", {"version", "heldout", "prepare", "languages"});
    Manifest m;
    m.path = path;
    fs::path base = fs::path(path).parent_path();
    if (root["version"]) {
        m.version = static_cast<int>(integer(c, root["version"], "version"));
        if (m.version != 1)
            c.error(root["version"], fmt::format("version: expected 1, found {}", m.version));
    }
    if (YAML::Node h = root["heldout"]) {
        require_map(c, h, "heldout");
        check_keys(c, h, "heldout", {"passages", "fraction"});
        if (h["passages"] && h["fraction"])
            c.error(h, "heldout: expected one of passages or fraction, found both");
        if (YAML::Node p = h["passages"]) {
            if (!p.IsSequence())
                c.error(p,
                        fmt::format("heldout.passages: expected a list, found {}", node_kind(p)));
            for (const auto& x : p)
                m.heldout.passages.push_back(integer(c, x, "heldout.passages"));
        }
        if (YAML::Node f = h["fraction"]) {
            try {
                m.heldout.fraction = f.as<double>();
            } catch (const YAML::Exception&) {
                c.error(f,
                        fmt::format("heldout.fraction: expected a number, found {}", node_kind(f)));
            }
            if (!(m.heldout.fraction >= 0 && m.heldout.fraction < 1))
                c.error(f, fmt::format("heldout.fraction: expected a number in [0, 1), found {}",
                                       m.heldout.fraction));
        }
    }
    if (YAML::Node p = root["prepare"]) {
        require_map(c, p, "prepare");
        check_keys(c, p, "prepare", {"dedup", "repetition_filter"});
        if (p["dedup"]) m.dedup = boolean(c, p["dedup"], "prepare.dedup");
        if (p["repetition_filter"])
            m.repetition_filter = boolean(c, p["repetition_filter"], "prepare.repetition_filter");
    }
    YAML::Node langs = root["languages"];
    if (!langs) c.error(root, "manifest: expected a \"languages\" mapping, found none");
    require_map(c, langs, "languages");
    if (langs.size() == 0) c.error(langs, "languages: expected at least one language, found none");
    std::set<std::string> codes;
    for (auto it = langs.begin(); it != langs.end(); ++it) {
        LanguageSpec l;
        l.info.code = scalar(c, it->first, "language code");
        l.line = it->first.Mark().line + 1;
        if (!codes.insert(l.info.code).second)
            c.error(it->first, fmt::format("languages: duplicate language \"{}\"", l.info.code));
        const YAML::Node v = it->second;  // a copy: the iterator yields a temporary pair
        std::string what = "languages." + l.info.code;
        require_map(c, v, what);
        check_keys(c, v, what, {"name", "script", "family", "stage", "related", "sources"});
        auto opt = [&](const char* k, std::string* dst) {
            if (v[k]) *dst = scalar(c, v[k], what + "." + k);
        };
        opt("name", &l.info.name);
        opt("script", &l.info.script);
        opt("family", &l.info.family);
        opt("stage", &l.info.stage);
        opt("related", &l.info.related);
        if (l.info.stage.empty())
            c.error(v, fmt::format("{}: expected a \"stage\" (base, 1, 2 or a name), found none",
                                   what));
        YAML::Node src = v["sources"];
        if (!src || !src.IsSequence() || src.size() == 0)
            c.error(src ? src : v, fmt::format("{}.sources: expected a non-empty list", what));
        for (const auto& s : src)
            l.sources.push_back(parse_source(c, s, base));
        m.languages.push_back(std::move(l));
    }
    for (const auto& l : m.languages) {
        if (l.info.related.empty()) continue;
        if (!codes.count(l.info.related) || l.info.related == l.info.code)
            fail("manifest",
                 "{}:{}: languages.{}.related: expected another language's code, found "
                 "\"{}\"",
                 path, l.line, l.info.code, l.info.related);
    }
    return m;
}

}  // namespace

Manifest load_manifest(const std::string& path) {
    if (std::error_code ec; !fs::is_regular_file(path, ec))
        fail("manifest", "{}: expected a YAML manifest file, found none", path);
    check_yaml_size(path, "manifest");
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::Exception& e) {
        fail("manifest", "{}:{}: expected valid YAML, found a syntax error: {}", path,
             e.mark.line + 1, e.msg);
    }
    try {
        return parse_manifest(path, root);
    } catch (const YAML::Exception& e) {
        // yaml-cpp conversions, e.g. a key that is itself a list or a mapping.
        fail("manifest", "{}:{}: expected the manifest schema, found an error: {}", path,
             e.mark.line + 1, e.msg);
    }
}

}  // namespace polymoe::data
