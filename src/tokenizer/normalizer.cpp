// UTF-8 helpers, character classes and NFC with Hugging Face alignments (see normalizer.h).
// NFC runs a fast scan first: text made only of "inert" characters (no canonical decomposition,
// combining class 0, never the second half of a composition) is already NFC and keeps identity
// alignments. Around the other characters a small window is normalised with the exact algorithm
// of HF's unicode-normalization-alignments crate (decompose, stable-sort marks by combining
// class, recompose, each output char carrying a "change" count), then aligned as in
// NormalizedString::transform_range.
#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <algorithm>

#include "core/error.h"

namespace polymoe::tokenizer {

namespace {

// Allowed range of the second byte for lead byte b (Unicode Table 3-7), and the sequence length.
bool lead_info(uint8_t b, int* len, uint8_t* lo, uint8_t* hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        *len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        *len = 3;
        if (b == 0xE0) *lo = 0xA0;
        if (b == 0xED) *hi = 0x9F;  // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
        *len = 4;
        if (b == 0xF0) *lo = 0x90;
        if (b == 0xF4) *hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return false;
    }
    return true;
}

}  // namespace

int utf8_decode(std::string_view s, size_t i, int32_t* cp) {
    uint8_t b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int len;
    uint8_t lo, hi;
    if (!lead_info(b, &len, &lo, &hi) || i + len > s.size()) return 0;
    uint8_t b1 = static_cast<uint8_t>(s[i + 1]);
    if (b1 < lo || b1 > hi) return 0;
    int32_t c = b & (0x7F >> len);
    c = (c << 6) | (b1 & 0x3F);
    for (int k = 2; k < len; ++k) {
        uint8_t bk = static_cast<uint8_t>(s[i + k]);
        if (bk < 0x80 || bk > 0xBF) return 0;
        c = (c << 6) | (bk & 0x3F);
    }
    *cp = c;
    return len;
}

void validate_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        if (static_cast<uint8_t>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        int32_t cp = 0;
        int n = utf8_decode(s, i, &cp);
        if (n == 0)
            fail("tokenizer",
                 "input text: expected valid UTF-8, found invalid byte 0x{:02X} at byte {}",
                 static_cast<uint8_t>(s[i]), i);
        i += n;
    }
}

void utf8_append(std::string& out, int32_t cp) {
    uint8_t buf[4];
    auto n = utf8proc_encode_char(cp, buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

std::string utf8_lossy(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        int32_t cp = 0;
        int n = utf8_decode(s, i, &cp);
        if (n > 0) {
            out.append(s.substr(i, n));
            i += n;
            continue;
        }
        // Maximal invalid subpart: the lead byte plus the continuation bytes that were valid.
        int len;
        uint8_t lo, hi;
        size_t j = i + 1;
        if (lead_info(static_cast<uint8_t>(s[i]), &len, &lo, &hi)) {
            for (int k = 1; k < len && j < s.size(); ++k, ++j) {
                uint8_t b = static_cast<uint8_t>(s[j]);
                if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
            }
        }
        out += "\xEF\xBF\xBD";
        i = j;
    }
    return out;
}

bool is_white_space(int32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return false;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

CharClass char_class(int32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CharClass::kLetter;
        if (cp >= '0' && cp <= '9') return CharClass::kNumber;
        if (is_white_space(cp)) return CharClass::kSpace;
        return CharClass::kOther;
    }
    if (is_white_space(cp)) return CharClass::kSpace;
    switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
            return CharClass::kLetter;
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            return CharClass::kNumber;
        default:
            return CharClass::kOther;
    }
}

bool is_word_char(int32_t cp) {
    if (cp == 0x200C || cp == 0x200D) return true;
    switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_PC:
            return true;
        default:
            return false;
    }
}

namespace {

int ccc(int32_t cp) {
    return cp < 0x300 ? 0 : utf8proc_get_property(cp)->combining_class;
}

// Primary composite of (a, b), or -1.
int32_t compose(int32_t a, int32_t b) {
    utf8proc_int32_t buf[2] = {a, b};
    auto n = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE);
    return n == 1 ? buf[0] : -1;
}

struct Item {
    int32_t cp = 0;
    int change;  // HF's isize change: 0 replaces, >0 inserts, <0 also removes following chars
};

// Canonical decomposition with changes, marks stably sorted by combining class.
void decompose(const std::vector<int32_t>& cps, std::vector<Item>* out) {
    out->clear();
    for (int32_t cp : cps) {
        utf8proc_int32_t buf[32];
        int bc = 0;
        auto n = utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE, &bc);
        if (n <= 0 || n > 32) {
            buf[0] = cp;
            n = 1;
        }
        for (int k = 0; k < n; ++k)
            out->push_back({buf[k], k == 0 ? 0 : 1});
    }
    size_t i = 0;
    while (i < out->size()) {
        if (ccc((*out)[i].cp) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < out->size() && ccc((*out)[j].cp) != 0)
            ++j;
        std::stable_sort(out->begin() + i, out->begin() + j,
                         [](const Item& x, const Item& y) { return ccc(x.cp) < ccc(y.cp); });
        i = j;
    }
}

// The Recompositions iterator of unicode-normalization-alignments, as a loop.
void recompose(const std::vector<Item>& in, std::vector<Item>* out) {
    out->clear();
    std::vector<Item> buffer;
    bool has_k = false;
    Item k{};
    int last_ccc = -1;  // -1 = None
    auto purge = [&] {
        out->insert(out->end(), buffer.begin(), buffer.end());
        buffer.clear();
    };
    for (const Item& it : in) {
        int cls = ccc(it.cp);
        if (!has_k) {
            if (cls != 0) {
                out->push_back(it);
                continue;
            }
            k = it;
            has_k = true;
            continue;
        }
        if (last_ccc < 0) {
            int32_t r = compose(k.cp, it.cp);
            if (r >= 0) {
                k = {r, k.change + it.change - 1};
                continue;
            }
            if (cls == 0) {
                out->push_back(k);
                k = it;
                continue;
            }
            buffer.push_back(it);
            last_ccc = cls;
            continue;
        }
        if (last_ccc >= cls) {  // blocked from the composee
            if (cls == 0) {
                out->push_back(k);
                purge();
                k = it;
                last_ccc = -1;
                continue;
            }
            buffer.push_back(it);
            last_ccc = cls;
            continue;
        }
        int32_t r = compose(k.cp, it.cp);
        if (r >= 0) {
            k = {r, k.change + it.change - 1};
            continue;
        }
        buffer.push_back(it);
        last_ccc = cls;
    }
    if (has_k) out->push_back(k);
    purge();
}

// True when cp is NFC-stable on its own and can neither be reordered nor composed with a
// preceding character: then the NFC walk never looks across the boundary before it (a following
// mark that composes with it puts it into that mark's window instead).
bool inert_uncached(int32_t cp) {
    if (cp < 0x80) return true;
    if (cp >= 0xAC00 && cp <= 0xD7A3) return true;  // Hangul LV/LVT: decompose + recompose
    if ((cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2)) return false;
    const utf8proc_property_t* p = utf8proc_get_property(cp);
    if (p->combining_class != 0) return false;
    if (p->category == UTF8PROC_CATEGORY_MN || p->category == UTF8PROC_CATEGORY_MC ||
        p->category == UTF8PROC_CATEGORY_ME)
        return false;
    if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) return true;
    // Precomposed (e.g. U+00E9): inert if it starts with a starter and recomposes to itself.
    std::vector<Item> dec, comp;
    decompose({cp}, &dec);
    if (dec.empty() || ccc(dec[0].cp) != 0) return false;
    recompose(dec, &comp);
    return comp.size() == 1 && comp[0].cp == cp && comp[0].change == 0;
}

// inert() over a table built once for the planes in use (BMP, SMP, SIP).
bool inert(int32_t cp) {
    constexpr int32_t kTable = 0x30000;
    static const std::vector<uint8_t> table = [] {
        std::vector<uint8_t> t(kTable);
        for (int32_t c = 0; c < kTable; ++c)
            t[c] = inert_uncached(c) ? 1 : 0;
        return t;
    }();
    return cp < kTable ? table[cp] != 0 : inert_uncached(cp);
}

// Appends input[a, b) unchanged, each byte aligned to its whole character.
void append_identity(std::string_view input, size_t a, size_t b, Normalized* out) {
    out->text.append(input.substr(a, b - a));
    size_t i = a;
    while (i < b) {
        int32_t cp = 0;
        int n = utf8_decode(input, i, &cp);
        if (n == 0) n = 1;
        for (int k = 0; k < n; ++k)
            out->align.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(i + n));
        i += n;
    }
}

// Normalises the window input[s, r) (whose characters are decoded in cps/starts) and appends it.
void normalize_window(std::string_view input, size_t s, size_t r, Span before, Normalized* out) {
    std::vector<int32_t> cps;
    std::vector<Span> spans;
    for (size_t i = s; i < r;) {
        int32_t cp = 0;
        int n = utf8_decode(input, i, &cp);
        cps.push_back(cp);
        spans.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(i + n));
        i += n;
    }
    std::vector<Item> dec, comp;
    decompose(cps, &dec);
    recompose(dec, &comp);
    size_t opos = 0;  // next input character of the transform_range walk
    for (const Item& it : comp) {
        Span a;
        if (it.change > 0) {
            a = opos == 0 ? before : spans[opos - 1];
        } else {
            a = opos < spans.size() ? spans[opos] : (spans.empty() ? before : spans.back());
            opos += 1 + static_cast<size_t>(-it.change);
        }
        size_t before_len = out->text.size();
        utf8_append(out->text, it.cp);
        out->align.insert(out->align.end(), out->text.size() - before_len, a);
    }
}

}  // namespace

void nfc(std::string_view input, size_t begin, size_t end, Normalized* out) {
    out->identity = true;
    out->text.clear();
    out->align.clear();
    size_t pos = begin;       // input consumed into `out` so far
    size_t prev_start = end;  // start of the character before i (end = none)
    size_t i = begin;
    while (i < end) {
        if (static_cast<uint8_t>(input[i]) < 0x80) {
            prev_start = i++;
            continue;
        }
        int32_t cp = 0;
        int n = utf8_decode(input, i, &cp);
        if (inert(cp)) {
            prev_start = i;
            i += n;
            continue;
        }
        // Window: the inert character before (it may compose with what follows) up to the
        // next inert character.
        size_t s = (prev_start != end && prev_start >= pos) ? prev_start : i;
        size_t r = i + n;
        while (r < end) {
            int32_t c2 = 0;
            int n2 = utf8_decode(input, r, &c2);
            if (inert(c2)) break;
            r += n2;
        }
        if (out->identity) {
            out->identity = false;
            out->text.reserve(end - begin + 16);
            out->align.reserve(end - begin + 16);
        }
        append_identity(input, pos, s, out);
        Span before{static_cast<uint32_t>(begin), static_cast<uint32_t>(begin)};
        if (s > begin) {
            size_t p = s - 1;
            while (p > begin && (static_cast<uint8_t>(input[p]) & 0xC0) == 0x80)
                --p;
            before = {static_cast<uint32_t>(p), static_cast<uint32_t>(s)};
        }
        normalize_window(input, s, r, before, out);
        pos = r;
        prev_start = end;
        i = r;
    }
    if (!out->identity) append_identity(input, pos, end, out);
    if (!out->identity) {
        // A window may have come out unchanged (e.g. a lone mark): keep identity then, it is
        // cheaper downstream and gives the same offsets.
        if (out->text == input.substr(begin, end - begin)) {
            bool same = true;
            size_t k = begin;
            for (size_t b = 0; b < out->align.size() && same; ++b, ++k) {
                size_t cs = k;
                while (cs > begin && (static_cast<uint8_t>(input[cs]) & 0xC0) == 0x80)
                    --cs;
                same = out->align[b].first == cs;
            }
            if (same) {
                out->identity = true;
                out->text.clear();
                out->align.clear();
            }
        }
    }
}

std::string nfc_string(std::string_view s) {
    Normalized n;
    nfc(s, 0, s.size(), &n);
    return n.identity ? std::string(s) : n.text;
}

}  // namespace polymoe::tokenizer
