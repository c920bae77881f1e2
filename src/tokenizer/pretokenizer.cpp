// Hand-written matcher for the GPT-2 pre-tokenizer regex (see pretokenizer.h). At position i
// the alternatives are tried in order, exactly as a backtracking engine would:
//   1. 's 't 're 've 'm 'll 'd   (ASCII apostrophe, lower case, no word-boundary check)
//   2-4. an optional U+0020 then a maximal run of letters | numbers | other (not \s, L, N)
//   5. \s+(?!\S): the whitespace run, minus its last character when a non-space follows
//   6. \s+: a single whitespace character followed by a non-space
// ASCII goes through a 128-entry class table; other code points through utf8proc categories.
#include "tokenizer/pretokenizer.h"

#include <array>

#include "tokenizer/normalizer.h"

namespace polymoe::tokenizer {

namespace {

struct AsciiClasses {
    std::array<CharClass, 128> c{};
    AsciiClasses() {
        for (int i = 0; i < 128; ++i)
            c[i] = char_class(i);
    }
};
const AsciiClasses kAscii;

// Class and length of the code point at i.
inline CharClass class_at(std::string_view t, size_t i, int* len) {
    uint8_t b = static_cast<uint8_t>(t[i]);
    if (b < 0x80) {
        *len = 1;
        return kAscii.c[b];
    }
    int32_t cp = 0;
    int n = utf8_decode(t, i, &cp);
    if (n == 0) {  // not reached for validated input; treat the byte as "other"
        *len = 1;
        return CharClass::kOther;
    }
    *len = n;
    return char_class(cp);
}

// End of the maximal run of class k starting at i.
inline size_t run_end(std::string_view t, size_t i, CharClass k) {
    while (i < t.size()) {
        int n;
        if (class_at(t, i, &n) != k) break;
        i += n;
    }
    return i;
}

}  // namespace

size_t gpt2_match(std::string_view t, size_t i) {
    const size_t size = t.size();
    uint8_t b = static_cast<uint8_t>(t[i]);
    if (b == '\'' && i + 1 < size) {
        char c1 = t[i + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (i + 2 < size) {
            char c2 = t[i + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                return 3;
        }
    }
    int n;
    CharClass k = class_at(t, i, &n);
    if (b == ' ' && i + 1 < size) {
        int n2;
        CharClass k2 = class_at(t, i + 1, &n2);
        if (k2 != CharClass::kSpace) return run_end(t, i + 1 + n2, k2) - i;
    }
    if (k != CharClass::kSpace) return run_end(t, i + n, k) - i;
    // Whitespace run [i, j), remembering where its last character starts.
    size_t j = i, last = i;
    int m;
    while (j < size && class_at(t, j, &m) == CharClass::kSpace) {
        last = j;
        j += m;
    }
    if (j == size || last == i) return j - i;  // alternative 5 at the end, or alternative 6
    return last - i;                           // alternative 5: leave one space for what follows
}

namespace {

struct ByteMap {
    std::array<int32_t, 256> to_char{};
    std::array<std::string, 256> spelling;
    std::array<int16_t, 324> from_char{};  // byte-level code points are all < 324
    ByteMap() {
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
            to_char[b] = printable ? b : next++;
        }
        from_char.fill(-1);
        for (int b = 0; b < 256; ++b) {
            from_char[to_char[b]] = static_cast<int16_t>(b);
            utf8_append(spelling[b], to_char[b]);
        }
    }
};
const ByteMap kBytes;

}  // namespace

int32_t byte_char(uint8_t b) {
    return kBytes.to_char[b];
}
const std::string& byte_spelling(uint8_t b) {
    return kBytes.spelling[b];
}
int char_byte(int32_t cp) {
    return cp >= 0 && cp < static_cast<int32_t>(kBytes.from_char.size()) ? kBytes.from_char[cp]
                                                                         : -1;
}

}  // namespace polymoe::tokenizer
