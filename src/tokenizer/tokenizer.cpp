// Byte-level BPE tokenizer (see tokenizer.h): tokenizer.json loading and validation, added-token
// matching (HF AddedVocabulary::find_matches, leftmost-longest), BPE merging (HF Word::merge_all:
// a min-heap on (rank, position) with stale-entry checks), the per-thread word cache, offsets
// and the ByteLevel post-processor's trim_offsets, and decoding.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "core/error.h"
#include "core/parallel.h"
#include "tokenizer/pretokenizer.h"

#ifndef POLYMOE_DATA_DIR
#define POLYMOE_DATA_DIR "data"
#endif

namespace polymoe::tokenizer {

namespace {

using json = nlohmann::json;

std::atomic<uint64_t> g_next_instance{1};

// A match of an added token: token index into added_, bytes [begin, end).
struct Match {
    int token;
    size_t begin, end;
};

// Leftmost-longest multi-pattern matcher over a byte trie (a handful of patterns).
class Trie {
public:
    void add(const std::string& pattern, int value) {
        if (pattern.empty()) return;
        int node = 0;
        for (unsigned char c : pattern) {
            int next = child(node, c);
            if (next < 0) {
                next = static_cast<int>(nodes_.size());
                nodes_.push_back({});
                nodes_[node].edges.emplace_back(c, next);
            }
            node = next;
        }
        nodes_[node].value = value;
        first_[static_cast<unsigned char>(pattern[0])] = true;
    }
    bool empty() const { return nodes_.size() == 1; }
    // All non-overlapping leftmost-longest matches in s.
    void find_all(std::string_view s, std::vector<Match>* out) const {
        out->clear();
        if (empty()) return;
        size_t i = 0;
        while (i < s.size()) {
            if (!first_[static_cast<unsigned char>(s[i])]) {
                ++i;
                continue;
            }
            int node = 0, best = -1;
            size_t best_end = 0;
            for (size_t j = i; j < s.size(); ++j) {
                node = child(node, static_cast<unsigned char>(s[j]));
                if (node < 0) break;
                if (nodes_[node].value >= 0) {
                    best = nodes_[node].value;
                    best_end = j + 1;
                }
            }
            if (best >= 0) {
                out->push_back({best, i, best_end});
                i = best_end;
            } else {
                ++i;
            }
        }
    }

private:
    struct Node {
        std::vector<std::pair<unsigned char, int>> edges;
        int value = -1;
    };
    int child(int node, unsigned char c) const {
        for (auto [e, n] : nodes_[node].edges)
            if (e == c) return n;
        return -1;
    }
    std::vector<Node> nodes_ = std::vector<Node>(1);
    bool first_[256] = {};
};

// One BPE output token: id and length in bytes of the pre-token.
struct Piece {
    int32_t id;
    uint32_t len;
};

// Per-thread cache of BPE results by pre-token bytes. Keyed by tokenizer instance so a thread
// that uses several tokenizers never mixes them.
struct WordCache {
    uint64_t owner = 0;
    std::unordered_map<std::string, std::vector<Piece>> map;
};
// Largest token id accepted in a tokenizer.json (2^24 - 1; real vocabularies stay below 2^20).
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;
constexpr size_t kCacheMax = 1 << 17;

// Hash map for merges: (left id, right id) -> (rank, new id); open addressing, power-of-2 size.
class MergeMap {
public:
    void build(const std::vector<std::pair<uint64_t, std::pair<uint32_t, int32_t>>>& entries) {
        size_t cap = 16;
        while (cap < entries.size() * 2)
            cap *= 2;
        keys_.assign(cap, kEmpty);
        vals_.assign(cap, {0, 0});
        mask_ = cap - 1;
        for (const auto& [k, v] : entries) {
            size_t h = hash(k) & mask_;
            while (keys_[h] != kEmpty && keys_[h] != k)
                h = (h + 1) & mask_;
            keys_[h] = k;  // a later duplicate overwrites, as HF's HashMap collect does
            vals_[h] = v;
        }
    }
    const std::pair<uint32_t, int32_t>* find(int32_t a, int32_t b) const {
        if (keys_.empty()) return nullptr;
        uint64_t k =
            (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
        size_t h = hash(k) & mask_;
        while (true) {
            if (keys_[h] == k) return &vals_[h];
            if (keys_[h] == kEmpty) return nullptr;
            h = (h + 1) & mask_;
        }
    }

private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    static size_t hash(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        return static_cast<size_t>(k);
    }
    std::vector<uint64_t> keys_;
    std::vector<std::pair<uint32_t, int32_t>> vals_;
    size_t mask_ = 0;
};

bool is_cont(char c) {
    return (static_cast<uint8_t>(c) & 0xC0) == 0x80;
}

// Counts leading/trailing characters of a token string that are 'Ġ' or White_Space (HF
// byte_level::process_offsets).
void count_spaces(const std::string& tok, uint16_t* lead, uint16_t* trail) {
    std::vector<int32_t> cps;
    for (size_t i = 0; i < tok.size();) {
        int32_t cp = 0;
        int n = utf8_decode(tok, i, &cp);
        if (n == 0) return;
        cps.push_back(cp);
        i += n;
    }
    auto sp = [](int32_t cp) { return cp == 0x120 || is_white_space(cp); };
    size_t l = 0, t = 0;
    while (l < cps.size() && sp(cps[l]))
        ++l;
    while (t < cps.size() && sp(cps[cps.size() - 1 - t]))
        ++t;
    *lead = static_cast<uint16_t>(std::min<size_t>(l, 65535));
    *trail = static_cast<uint16_t>(std::min<size_t>(t, 65535));
}

std::string type_of(const json& j) {
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return "<no type>";
    return j["type"].get<std::string>();
}

bool get_bool(const json& j, const char* key, bool def) {
    if (!j.contains(key) || j[key].is_null()) return def;
    return j[key].get<bool>();
}

}  // namespace

struct Tokenizer::Impl {
    std::string origin;
    uint64_t instance = 0;
    Variant variant = Variant::kExact;

    // Model.
    std::unordered_map<std::string, int32_t> vocab;  // model vocabulary
    std::vector<std::string> id_to_tok;              // model + added, by id
    std::vector<uint8_t> is_special;                 // by id
    std::vector<uint16_t> lead_ws, trail_ws;         // by id, for trim_offsets
    std::vector<std::string> decode_tok;             // by id: normalized form of added tokens
    int32_t byte_id[256];                            // id of each byte's spelling, -1 if none
    MergeMap merges;
    std::vector<std::pair<int32_t, int32_t>> merge_list;  // file order (negative control)
    int32_t unk_id = -1;
    bool fuse_unk = false, byte_fallback = false, ignore_merges = false;

    // Pipeline switches.
    bool use_nfc = false;
    bool pre_bytelevel = false, pre_prefix_space = false, pre_regex = true;
    bool post_trim = false, post_prefix_space = false;
    bool decoder_bytelevel = false;

    std::vector<AddedToken> added;
    Trie raw_trie, norm_trie;  // non-normalized / normalized added tokens

    void load(const json& j);
    void load_model(const json& m);
    void load_added(const json& a);
    void encode_into(std::string_view text, Encoding* enc) const;
    void encode_piece(std::string_view text, size_t begin, size_t end, Encoding* enc) const;
    void bpe_word(std::string_view word, std::vector<Piece>* out) const;
    void merge_word(const std::vector<int32_t>& ids0,
                    const std::vector<uint32_t>& lens0,
                    std::vector<Piece>* out) const;
    void find_matches(std::string_view s, const Trie& trie, std::vector<Match>* out) const;
    void post_process(Encoding* enc) const;
    // Pushes an added token; trim_offsets then looks at the matched text (HF keeps it as the
    // token's value), which includes whitespace taken by lstrip/rstrip.
    void push_added(Encoding* enc, int32_t id, std::string_view matched, Span span) const;
};

namespace {
// Leading/trailing space counts of each token of the encoding being built (this thread).
thread_local std::vector<std::pair<uint16_t, uint16_t>> t_trim;
}  // namespace

void Tokenizer::Impl::push_added(Encoding* enc,
                                 int32_t id,
                                 std::string_view matched,
                                 Span span) const {
    uint16_t lead = 0, trail = 0;
    count_spaces(std::string(matched), &lead, &trail);
    enc->ids.push_back(id);
    enc->offsets.push_back(span);
    t_trim.emplace_back(lead, trail);
}

void Tokenizer::Impl::load(const json& j) {
    if (!j.is_object()) fail("tokenizer", "{}: expected a JSON object", origin);
    for (const char* key : {"truncation", "padding"})
        if (j.contains(key) && !j[key].is_null())
            fail("tokenizer", "{}: \"{}\" is not supported (expected null)", origin, key);

    if (j.contains("normalizer") && !j["normalizer"].is_null()) {
        std::string t = type_of(j["normalizer"]);
        if (t != "NFC")
            fail("tokenizer", "{}: normalizer \"{}\" is not supported (only NFC or null)", origin,
                 t);
        use_nfc = true;
    }
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
        const json& p = j["pre_tokenizer"];
        std::string t = type_of(p);
        if (t != "ByteLevel")
            fail("tokenizer", "{}: pre_tokenizer \"{}\" is not supported (only ByteLevel)", origin,
                 t);
        pre_bytelevel = true;
        pre_prefix_space = get_bool(p, "add_prefix_space", true);
        pre_regex = get_bool(p, "use_regex", true);
    }
    if (j.contains("post_processor") && !j["post_processor"].is_null()) {
        const json& p = j["post_processor"];
        std::string t = type_of(p);
        if (t != "ByteLevel")
            fail("tokenizer", "{}: post_processor \"{}\" is not supported (only ByteLevel)", origin,
                 t);
        post_trim = get_bool(p, "trim_offsets", true);
        post_prefix_space = get_bool(p, "add_prefix_space", true);
    }
    if (j.contains("decoder") && !j["decoder"].is_null()) {
        std::string t = type_of(j["decoder"]);
        if (t != "ByteLevel")
            fail("tokenizer", "{}: decoder \"{}\" is not supported (only ByteLevel)", origin, t);
        decoder_bytelevel = true;
    }
    if (!pre_bytelevel)
        fail("tokenizer", "{}: expected a ByteLevel pre_tokenizer (byte-level BPE), found none",
             origin);
    if (!j.contains("model")) fail("tokenizer", "{}: no \"model\"", origin);
    load_model(j["model"]);
    load_added(j.contains("added_tokens") ? j["added_tokens"] : json::array());
}

void Tokenizer::Impl::load_model(const json& m) {
    std::string t = m.contains("type") ? type_of(m) : std::string("BPE");
    if (t != "BPE") fail("tokenizer", "{}: model \"{}\" is not supported (only BPE)", origin, t);
    if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() != 0.0)
        fail("tokenizer", "{}: BPE dropout is not supported (expected null)", origin);
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (m.contains(key) && !m[key].is_null() && !m[key].get<std::string>().empty())
            fail("tokenizer", "{}: BPE {} is not supported (expected null)", origin, key);
    fuse_unk = get_bool(m, "fuse_unk", false);
    byte_fallback = get_bool(m, "byte_fallback", false);
    ignore_merges = get_bool(m, "ignore_merges", false);

    if (!m.contains("vocab") || !m["vocab"].is_object())
        fail("tokenizer", "{}: model.vocab: expected an object", origin);
    // Ids index a table of id_to_tok, so they are bounded before it is allocated: real
    // vocabularies are dense (ids 0..n-1, n up to a few hundred thousand); a sparse one may leave
    // gaps, but not ask for a table more than twice its size (plus slack for small files).
    const int64_t vocab_entries = static_cast<int64_t>(m["vocab"].size());
    const int64_t id_limit = std::min<int64_t>(kMaxTokenId, 2 * vocab_entries + 1024);
    int32_t max_id = -1;
    for (const auto& [tok, idj] : m["vocab"].items()) {
        // An integer check first: nlohmann converts a float such as 1e30 with undefined
        // behaviour.
        if (!idj.is_number_integer())
            fail("tokenizer", "{}: model.vocab[\"{}\"]: expected an integer id, found {}", origin,
                 tok, idj.dump());
        int64_t id = idj.get<int64_t>();
        if (id < 0 || id > id_limit)
            fail("tokenizer",
                 "{}: model.vocab[\"{}\"]: expected an id in [0, {}] ({} entries), found {}",
                 origin, tok, id_limit, vocab_entries, id);
        vocab[tok] = static_cast<int32_t>(id);
        max_id = std::max(max_id, static_cast<int32_t>(id));
    }
    id_to_tok.assign(static_cast<size_t>(max_id + 1), std::string());
    for (const auto& [tok, id] : vocab)
        id_to_tok[id] = tok;
    for (int b = 0; b < 256; ++b) {
        auto it = vocab.find(byte_spelling(static_cast<uint8_t>(b)));
        byte_id[b] = it == vocab.end() ? -1 : it->second;
    }
    if (m.contains("unk_token") && !m["unk_token"].is_null()) {
        std::string unk = m["unk_token"].get<std::string>();
        auto it = vocab.find(unk);
        if (it == vocab.end())
            fail("tokenizer", "{}: unk_token \"{}\" is not in the vocabulary", origin, unk);
        unk_id = it->second;
    }

    std::vector<std::pair<uint64_t, std::pair<uint32_t, int32_t>>> entries;
    const json& ms = m.contains("merges") ? m["merges"] : json::array();
    entries.reserve(ms.size());
    uint32_t rank = 0;
    for (const json& e : ms) {
        std::string a, b;
        if (e.is_string()) {
            std::string s = e.get<std::string>();
            size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                fail("tokenizer", "{}: merge {}: expected \"left right\", found \"{}\"", origin,
                     rank, s);
            a = s.substr(0, sp);
            b = s.substr(sp + 1);
        } else if (e.is_array() && e.size() == 2) {
            a = e[0].get<std::string>();
            b = e[1].get<std::string>();
        } else {
            fail("tokenizer", "{}: merge {}: expected a string or a pair", origin, rank);
        }
        auto ia = vocab.find(a), ib = vocab.find(b), ic = vocab.find(a + b);
        if (ia == vocab.end() || ib == vocab.end() || ic == vocab.end())
            fail("tokenizer", "{}: merge {} (\"{}\" \"{}\"): token not in the vocabulary", origin,
                 rank, a, b);
        uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32) |
                       static_cast<uint32_t>(ib->second);
        entries.push_back({key, {rank, ic->second}});
        merge_list.emplace_back(ia->second, ib->second);
        ++rank;
    }
    merges.build(entries);
}

void Tokenizer::Impl::load_added(const json& a) {
    if (!a.is_array()) fail("tokenizer", "{}: added_tokens: expected an array", origin);
    // HF AddedVocabulary::add_tokens: the "id" fields are not used. A token whose content is
    // already known keeps that id (added first, then model vocabulary); others get the next id
    // after the model vocabulary, in file order. Empty contents are ignored.
    std::unordered_map<std::string, int32_t> by_content;
    std::map<int32_t, AddedToken> by_id;
    int32_t next_id = static_cast<int32_t>(vocab.size());
    for (const json& t : a) {
        AddedToken tok;
        tok.content = t.at("content").get<std::string>();
        if (tok.content.empty()) continue;
        validate_utf8(tok.content);
        tok.single_word = get_bool(t, "single_word", false);
        tok.lstrip = get_bool(t, "lstrip", false);
        tok.rstrip = get_bool(t, "rstrip", false);
        tok.normalized = get_bool(t, "normalized", true);
        tok.special = get_bool(t, "special", false);
        int32_t id;
        if (auto it = by_content.find(tok.content); it != by_content.end()) {
            id = it->second;
        } else if (auto iv = vocab.find(tok.content); iv != vocab.end()) {
            id = iv->second;
        } else {
            id = next_id++;
        }
        tok.id = id;
        by_content[tok.content] = id;
        by_id[id] = tok;
    }
    for (auto& [id, tok] : by_id) {
        if (static_cast<size_t>(id) >= id_to_tok.size()) id_to_tok.resize(id + 1);
        id_to_tok[id] = tok.content;
        added.push_back(tok);
    }
    is_special.assign(id_to_tok.size(), 0);
    for (size_t i = 0; i < added.size(); ++i) {
        const AddedToken& tok = added[i];
        is_special[tok.id] = tok.special ? 1 : 0;
        // Normalized tokens are matched by their normalized form, on normalized text.
        if (tok.normalized)
            norm_trie.add(use_nfc ? nfc_string(tok.content) : tok.content, static_cast<int>(i));
        else
            raw_trie.add(tok.content, static_cast<int>(i));
    }
    decode_tok = id_to_tok;
    for (const AddedToken& tok : added)
        if (tok.normalized && use_nfc) decode_tok[tok.id] = nfc_string(tok.content);
    lead_ws.assign(id_to_tok.size(), 0);
    trail_ws.assign(id_to_tok.size(), 0);
    for (size_t id = 0; id < id_to_tok.size(); ++id)
        count_spaces(id_to_tok[id], &lead_ws[id], &trail_ws[id]);
}

// HF AddedVocabulary::find_matches: matches of `trie` in s, filtered and widened by the tokens'
// single_word / lstrip / rstrip flags, as (token or -1, begin, end) pieces tiling s.
void Tokenizer::Impl::find_matches(std::string_view s,
                                   const Trie& trie,
                                   std::vector<Match>* out) const {
    out->clear();
    std::vector<Match> found;
    trie.find_all(s, &found);
    size_t start_offset = 0;
    for (const Match& m : found) {
        size_t start = m.begin, stop = m.end;
        const AddedToken& tok = added[m.token];
        if (tok.single_word) {
            auto word_before = [&] {
                if (start == 0) return false;
                size_t p = start - 1;
                while (p > 0 && is_cont(s[p]))
                    --p;
                int32_t cp = 0;
                return utf8_decode(s, p, &cp) > 0 && is_word_char(cp);
            };
            auto word_after = [&] {
                int32_t cp = 0;
                return stop < s.size() && utf8_decode(s, stop, &cp) > 0 && is_word_char(cp);
            };
            if (word_before() || word_after()) continue;
        }
        if (tok.lstrip) {
            size_t p = start;
            while (p > 0) {
                size_t q = p - 1;
                while (q > 0 && is_cont(s[q]))
                    --q;
                int32_t cp = 0;
                if (utf8_decode(s, q, &cp) == 0 || !is_white_space(cp)) break;
                p = q;
            }
            start = std::max(p, start_offset);
        }
        if (tok.rstrip) {
            while (stop < s.size()) {
                int32_t cp = 0;
                int n = utf8_decode(s, stop, &cp);
                if (n == 0 || !is_white_space(cp)) break;
                stop += n;
            }
        }
        if (start_offset < start) out->push_back({-1, start_offset, start});
        out->push_back({m.token, start, stop});
        start_offset = stop;
    }
    if (start_offset != s.size()) out->push_back({-1, start_offset, s.size()});
}

// HF Word::merge_all: a min-heap of candidate merges ordered by (rank, position); an entry is
// applied only if the pair now at its position still merges into the same new id.
void Tokenizer::Impl::merge_word(const std::vector<int32_t>& ids0,
                                 const std::vector<uint32_t>& lens0,
                                 std::vector<Piece>* out) const {
    struct Sym {
        int32_t c;
        int32_t prev, next;
        uint32_t len;
    };
    const int n = static_cast<int>(ids0.size());
    std::vector<Sym> sym(n);
    for (int i = 0; i < n; ++i)
        sym[i] = {ids0[i], i - 1, i + 1 < n ? i + 1 : -1, lens0[i]};

    if (variant == Variant::kMergeFileOrder) {
        // Negative control: ignore ranks, merge the leftmost applicable pair each time.
        bool changed = true;
        while (changed) {
            changed = false;
            for (int i = 0; i >= 0 && sym[i].next >= 0; i = sym[i].next) {
                int j = sym[i].next;
                if (auto* m = merges.find(sym[i].c, sym[j].c)) {
                    sym[i].c = m->second;
                    sym[i].len += sym[j].len;
                    sym[i].next = sym[j].next;
                    if (sym[j].next >= 0) sym[sym[j].next].prev = i;
                    sym[j].len = 0;
                    changed = true;
                    break;
                }
            }
        }
    } else {
        struct Cand {
            uint32_t rank;
            int32_t pos;
            int32_t new_id;
            bool operator>(const Cand& o) const {
                return rank != o.rank ? rank > o.rank : pos > o.pos;
            }
        };
        std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
        for (int i = 0; i + 1 < n; ++i)
            if (auto* m = merges.find(sym[i].c, sym[i + 1].c)) queue.push({m->first, i, m->second});
        while (!queue.empty()) {
            Cand top = queue.top();
            queue.pop();
            Sym& cur = sym[top.pos];
            if (cur.len == 0 || cur.next < 0) continue;
            int next_pos = cur.next;
            Sym right = sym[next_pos];
            auto* m = merges.find(cur.c, right.c);
            if (!m || m->second != top.new_id) continue;
            cur.c = top.new_id;
            cur.len += right.len;
            cur.next = right.next;
            sym[next_pos].len = 0;
            if (right.next >= 0) sym[right.next].prev = top.pos;
            if (cur.prev >= 0)
                if (auto* mp = merges.find(sym[cur.prev].c, cur.c))
                    queue.push({mp->first, cur.prev, mp->second});
            if (cur.next >= 0)
                if (auto* mn = merges.find(cur.c, sym[cur.next].c))
                    queue.push({mn->first, top.pos, mn->second});
        }
    }
    out->clear();
    for (const Sym& s : sym)
        if (s.len != 0) out->push_back({s.c, s.len});
}

// BPE of one pre-token (raw bytes): HF BPE::merge_word's symbol setup (vocabulary lookup per
// byte-level character, byte fallback, unk) and merge_all.
void Tokenizer::Impl::bpe_word(std::string_view word, std::vector<Piece>* out) const {
    if (ignore_merges) {
        std::string spelled;
        for (unsigned char b : word)
            spelled += byte_spelling(b);
        auto it = vocab.find(spelled);
        if (it != vocab.end()) {
            out->assign(1, {it->second, static_cast<uint32_t>(word.size())});
            return;
        }
    }
    std::vector<int32_t> ids;
    std::vector<uint32_t> lens;
    ids.reserve(word.size());
    lens.reserve(word.size());
    int32_t pending_unk = -1;
    uint32_t pending_len = 0;
    for (unsigned char b : word) {
        int32_t id = byte_id[b];
        if (id >= 0) {
            if (pending_unk >= 0) {
                ids.push_back(pending_unk);
                lens.push_back(pending_len);
                pending_unk = -1;
            }
            ids.push_back(id);
            lens.push_back(1);
            continue;
        }
        if (byte_fallback) {
            // HF looks up <0xXX> for each UTF-8 byte of the byte-level character's spelling.
            const std::string& sp = byte_spelling(b);
            std::vector<int32_t> fb;
            for (unsigned char c : sp) {
                char name[8];
                std::snprintf(name, sizeof name, "<0x%02X>", c);
                auto it = vocab.find(name);
                if (it == vocab.end()) break;
                fb.push_back(it->second);
            }
            if (fb.size() == sp.size()) {
                for (int32_t f : fb) {
                    ids.push_back(f);
                    lens.push_back(1);
                }
                continue;
            }
        }
        if (unk_id >= 0) {
            if (pending_unk >= 0 && fuse_unk) {
                pending_len += 1;
            } else {
                if (pending_unk >= 0) {
                    ids.push_back(pending_unk);
                    lens.push_back(pending_len);
                }
                pending_unk = unk_id;
                pending_len = 1;
            }
        }
        // Without unk and byte fallback HF drops the character; so do we.
    }
    if (pending_unk >= 0) {
        ids.push_back(pending_unk);
        lens.push_back(pending_len);
    }
    merge_word(ids, lens, out);
}

void Tokenizer::Impl::encode_piece(std::string_view text,
                                   size_t begin,
                                   size_t end,
                                   Encoding* enc) const {
    thread_local Normalized norm;
    thread_local std::vector<Match> pieces;
    thread_local std::vector<Piece> word;
    thread_local WordCache cache;
    if (cache.owner != instance) {
        cache.map.clear();
        cache.owner = instance;
    }
    if (use_nfc && variant != Variant::kNoNfc) {
        tokenizer::nfc(text, begin, end, &norm);
    } else {
        norm.identity = true;
    }
    const bool ident = norm.identity;
    const std::string_view ntext =
        ident ? text.substr(begin, end - begin) : std::string_view(norm.text);
    // Normalized byte range [s, e) of ntext -> input byte range (whole characters).
    auto span_of = [&](size_t s, size_t e) -> Span {
        if (!ident) return {norm.align[s].first, norm.align[e - 1].second};
        size_t p = begin + s, q = begin + e - 1;
        while (p > begin && is_cont(text[p]))
            --p;
        while (q > begin && is_cont(text[q]))
            --q;
        int32_t cp = 0;
        int n = utf8_decode(text, q, &cp);
        return {static_cast<uint32_t>(p), static_cast<uint32_t>(q + std::max(n, 1))};
    };
    std::vector<Match> local;
    find_matches(ntext, norm_trie, &local);
    std::string prefixed;
    for (const Match& m : local) {
        if (m.token >= 0) {
            push_added(enc, added[m.token].id, ntext.substr(m.begin, m.end - m.begin),
                       span_of(m.begin, m.end));
            continue;
        }
        if (m.begin == m.end) continue;
        std::string_view piece = ntext.substr(m.begin, m.end - m.begin);
        // add_prefix_space: the added space aligns to the piece's first character.
        bool prefix = pre_prefix_space && piece[0] != ' ';
        if (prefix) {
            prefixed.assign(" ");
            prefixed.append(piece);
            piece = prefixed;
        }
        auto emit_word = [&](size_t a, size_t b) {  // [a, b) in piece
            std::string_view w = piece.substr(a, b - a);
            const std::vector<Piece>* res;
            auto it = cache.map.find(std::string(w));
            if (it != cache.map.end()) {
                res = &it->second;
            } else {
                bpe_word(w, &word);
                if (cache.map.size() >= kCacheMax) cache.map.clear();
                res = &cache.map.emplace(std::string(w), word).first->second;
            }
            size_t off = a;
            for (const Piece& p : *res) {
                size_t s = off, e = off + p.len;
                off = e;
                // Map back from piece coordinates (minus the prefix space) to ntext.
                if (prefix) {
                    s = s == 0 ? 0 : s - 1;
                    e = e <= 1 ? 1 : e - 1;
                }
                enc->ids.push_back(p.id);
                enc->offsets.push_back(span_of(m.begin + s, m.begin + e));
                t_trim.emplace_back(lead_ws[p.id], trail_ws[p.id]);
            }
        };
        if (pre_regex)
            split_gpt2(piece, emit_word);
        else
            emit_word(0, piece.size());
    }
}

void Tokenizer::Impl::post_process(Encoding* enc) const {
    if (!post_trim) return;
    for (size_t i = 0; i < enc->ids.size(); ++i) {
        uint32_t lead = t_trim[i].first, trail = t_trim[i].second;
        if (lead == 0 && trail == 0) continue;
        Span& o = enc->offsets[i];
        if (lead > 0) {
            bool is_first = i == 0 || o.first == 0;
            if (is_first && post_prefix_space && lead == 1) lead = 0;
            o.first = std::min(o.first + lead, o.second);
        }
        if (trail > 0 && o.second >= trail) o.second = std::max(o.second - trail, o.first);
    }
}

void Tokenizer::Impl::encode_into(std::string_view text, Encoding* enc) const {
    enc->ids.clear();
    enc->offsets.clear();
    t_trim.clear();
    std::vector<Match> top;
    find_matches(text, raw_trie, &top);
    for (const Match& m : top) {
        if (m.token >= 0) {
            push_added(enc, added[m.token].id, text.substr(m.begin, m.end - m.begin),
                       {static_cast<uint32_t>(m.begin), static_cast<uint32_t>(m.end)});
        } else {
            encode_piece(text, m.begin, m.end, enc);
        }
    }
    post_process(enc);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json_text(std::string_view text, const std::string& origin) {
    auto impl = std::make_unique<Impl>();
    impl->origin = origin;
    impl->instance = g_next_instance.fetch_add(1);
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        fail("tokenizer", "{}: expected tokenizer.json, found invalid JSON ({})", origin, e.what());
    }
    try {
        impl->load(j);
    } catch (const json::exception& e) {
        fail("tokenizer", "{}: unexpected field type ({})", origin, e.what());
    }
    return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("tokenizer", "{}: cannot open tokenizer file", path);
    std::stringstream ss;
    ss << f.rdbuf();
    return from_json_text(ss.str(), path);
}

Encoding Tokenizer::encode(std::string_view text) const {
    validate_utf8(text);
    Encoding enc;
    impl_->encode_into(text, &enc);
    return enc;
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string_view>& texts) const {
    size_t total = 0;
    for (std::string_view t : texts) {
        validate_utf8(t);
        total += t.size() + 1;
    }
    std::vector<Encoding> out(texts.size());
    // Contiguous chunks of documents with about equal bytes, one per thread.
    const int64_t n = static_cast<int64_t>(texts.size());
    const int64_t chunks = std::min<int64_t>(n, num_threads());
    std::vector<int64_t> first(chunks + 1, n);
    first[0] = 0;
    size_t acc = 0;
    int64_t c = 1;
    for (int64_t i = 0; i < n && c < chunks; ++i) {
        acc += texts[i].size() + 1;
        while (c < chunks && acc * chunks >= total * c)
            first[c++] = i + 1;
    }
    parallel_for(chunks, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t ch = b; ch < e; ++ch)
            for (int64_t i = first[ch]; i < first[ch + 1]; ++i)
                impl_->encode_into(texts[i], &out[i]);
    });
    return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
    std::string bytes;
    bool first = true;
    for (int32_t id : ids) {
        id_to_token(id);  // range check
        const std::string& tok = impl_->decode_tok[id];
        if (skip_special && impl_->is_special[id]) continue;
        if (!impl_->decoder_bytelevel) {  // HF without a decoder joins tokens with spaces
            if (!first) bytes += ' ';
            bytes += tok;
            first = false;
            continue;
        }
        // ByteLevel decoder: map every character back to its byte, or keep the token's own
        // UTF-8 when one character is not a byte-level character (added tokens like "  ").
        size_t start = bytes.size();
        bool ok = true;
        for (size_t i = 0; i < tok.size();) {
            int32_t cp = 0;
            int n = utf8_decode(tok, i, &cp);
            int b = n > 0 ? char_byte(cp) : -1;
            if (b < 0) {
                ok = false;
                break;
            }
            bytes += static_cast<char>(b);
            i += n;
        }
        if (!ok) {
            bytes.resize(start);
            bytes += tok;
        }
    }
    return utf8_lossy(bytes);
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
    if (id < 0 || id >= vocab_size())
        fail("tokenizer", "token id {}: expected 0 <= id < {}", id, vocab_size());
    return impl_->id_to_tok[id];
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
    for (const AddedToken& t : impl_->added)
        if (t.content == token) return t.id;
    auto it = impl_->vocab.find(std::string(token));
    return it == impl_->vocab.end() ? -1 : it->second;
}

int32_t Tokenizer::vocab_size() const {
    return static_cast<int32_t>(impl_->id_to_tok.size());
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const {
    return impl_->added;
}

void Tokenizer::set_variant(Variant v) {
    impl_->variant = v;
    impl_->instance = g_next_instance.fetch_add(1);  // invalidate per-thread caches
}

std::string data_dir() {
    const char* env = std::getenv("POLYMOE_DATA_DIR");
    return env && *env ? env : POLYMOE_DATA_DIR;
}

std::string default_tokenizer_path() {
    return data_dir() + "/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json";
}

}  // namespace polymoe::tokenizer
