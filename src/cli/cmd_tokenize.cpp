// polymoe tokenize: text -> token ids with the OLMo byte-level BPE tokenizer (DESIGN.md CLI
// contract). Input is --text STR or --in FILE (FILE.jsonl: one document per line, its "text"
// field; any other file: one document). Output, one line per document in input order: ids
// separated by spaces, or with --jsonl {"ids", "tokens", "offsets"} (byte offsets into the UTF-8
// text); --out FILE.npy writes the int32 ids of a single document. The tokenizer defaults to the
// one shipped in data/tokenizers/ (POLYMOE_DATA_DIR; see tokenizer.h).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "io/npy.h"
#include "tokenizer/tokenizer.h"

namespace polymoe::cli {

namespace {

struct TokenizeOptions {
    std::string tokenizer, text, in, out;
    bool jsonl = false;
    int threads = 0;
};

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("tokenize", "--in {}: cannot open file", path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<std::string> read_documents(const TokenizeOptions& o) {
    if (!o.text.empty() || o.in.empty()) return {o.text};
    std::string data = slurp(o.in);
    if (!ends_with(o.in, ".jsonl")) return {data};
    std::vector<std::string> docs;
    std::istringstream lines(data);
    std::string line;
    int64_t lineno = 0;
    while (std::getline(lines, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception&) {
            fail("tokenize", "--in {} line {}: expected a JSON object, found invalid JSON", o.in,
                 lineno);
        }
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
            fail("tokenize", "--in {} line {}: expected an object with a string \"text\" field",
                 o.in, lineno);
        docs.push_back(j["text"].get<std::string>());
    }
    return docs;
}

std::string format_line(const tokenizer::Tokenizer& tok, const tokenizer::Encoding& e, bool jsonl) {
    if (!jsonl) {
        std::string s;
        for (size_t i = 0; i < e.ids.size(); ++i) {
            if (i) s += ' ';
            s += std::to_string(e.ids[i]);
        }
        return s;
    }
    nlohmann::ordered_json j;  // keys in the contract's order: ids, tokens, offsets
    j["ids"] = e.ids;
    nlohmann::ordered_json toks = nlohmann::ordered_json::array(),
                           offs = nlohmann::ordered_json::array();
    for (size_t i = 0; i < e.ids.size(); ++i) {
        toks.push_back(tok.id_to_token(e.ids[i]));
        offs.push_back({e.offsets[i].first, e.offsets[i].second});
    }
    j["tokens"] = std::move(toks);
    j["offsets"] = std::move(offs);
    return j.dump();
}

}  // namespace

std::function<void()> register_tokenize(CLI::App& app) {
    auto o = std::make_shared<TokenizeOptions>();
    CLI::App* c = app.add_subcommand("tokenize", "text -> token ids (OLMo byte-level BPE)");
    c->add_option("--tokenizer", o->tokenizer,
                  "tokenizer.json (default: the shipped OLMo tokenizer, "
                  "$POLYMOE_DATA_DIR/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json)");
    auto* text = c->add_option("--text", o->text, "text of one document");
    auto* in = c->add_option("--in", o->in,
                             "input file: .jsonl = one document per line (\"text\" field), "
                             "anything else = one document");
    text->excludes(in);
    in->excludes(text);
    c->add_option("--out", o->out,
                  "output file (default: stdout); FILE.npy = int32 ids of one document");
    c->add_flag("--jsonl", o->jsonl, "write {\"ids\", \"tokens\", \"offsets\"} per document");
    add_threads_option(c, &o->threads);
    return [o, text, in] {
        if (text->count() == 0 && in->count() == 0)
            throw UsageError("[tokenize] expected --text STR or --in FILE, found neither");
        apply_threads(o->threads);
        const std::string path =
            o->tokenizer.empty() ? tokenizer::default_tokenizer_path() : o->tokenizer;
        if (!std::filesystem::exists(path))
            fail("tokenize",
                 "tokenizer {}: file not found (pass --tokenizer FILE.json or set "
                 "POLYMOE_DATA_DIR to the folder holding tokenizers/)",
                 path);
        Timer timer;
        tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_file(path);
        std::vector<std::string> docs = read_documents(*o);
        std::vector<std::string_view> views(docs.begin(), docs.end());
        Timer enc_timer;
        std::vector<tokenizer::Encoding> encs = tok.encode_batch(views);
        const double enc_s = enc_timer.seconds();

        int64_t n_tokens = 0, n_bytes = 0;
        for (size_t i = 0; i < docs.size(); ++i) {
            n_tokens += static_cast<int64_t>(encs[i].ids.size());
            n_bytes += static_cast<int64_t>(docs[i].size());
        }
        if (ends_with(o->out, ".npy")) {
            if (docs.size() != 1)
                fail("tokenize", "--out {}: .npy holds one document, found {} (use a text output)",
                     o->out, docs.size());
            io::write_npy(o->out, "<i4", {static_cast<int64_t>(encs[0].ids.size())},
                          encs[0].ids.data());
        } else {
            std::string outtext;
            for (const auto& e : encs) {
                outtext += format_line(tok, e, o->jsonl);
                outtext += '\n';
            }
            if (o->out.empty()) {
                std::fwrite(outtext.data(), 1, outtext.size(), stdout);
                std::fflush(stdout);
            } else {
                write_output_file(o->out, outtext, "tokenize");
            }
        }
        if (!o->out.empty())
            write_run_json(o->out + ".run.json", "tokenize",
                           {{"tokenizer", path},
                            {"text", o->text},
                            {"in", o->in},
                            {"out", o->out},
                            {"jsonl", o->jsonl},
                            {"threads", o->threads}},
                           {{"documents", docs.size()},
                            {"tokens", n_tokens},
                            {"bytes", n_bytes},
                            {"seconds", {{"encode", enc_s}, {"total", timer.seconds()}}}});
    };
}

}  // namespace polymoe::cli
