// UTF-8 decoding, the Unicode character classes the GPT-2 pre-tokenizer needs, and NFC
// normalisation with per-byte alignments back to the input, all over utf8proc. The alignment
// rules reproduce Hugging Face tokenizers' NormalizedString::nfc exactly (a decomposed/reordered/
// recomposed character takes the byte range of the input character at the same position of a
// left-to-right walk), because token offsets are reported in input bytes and must match it.
// Invalid UTF-8 policy: input must be valid UTF-8 (no surrogates, no overlongs); anything else
// is a polymoe::Error naming the byte offset. Decoding ids back to text replaces invalid
// sequences with U+FFFD instead (tokens can split characters).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace polymoe::tokenizer {

// Decodes the code point at s[i]; returns its length in bytes (1..4), or 0 if invalid.
int utf8_decode(std::string_view s, size_t i, int32_t* cp);
// Throws polymoe::Error("[tokenizer] invalid UTF-8 ... at byte N") unless s is valid UTF-8.
void validate_utf8(std::string_view s);
// Appends cp as UTF-8.
void utf8_append(std::string& out, int32_t cp);
// Rust String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Character classes of the ByteLevel regex: White_Space property, \p{L}, \p{N}, anything else.
enum class CharClass : uint8_t { kSpace, kLetter, kNumber, kOther };
CharClass char_class(int32_t cp);
// Unicode White_Space (what Oniguruma's and Rust's \s match).
bool is_white_space(int32_t cp);
// Rust regex \w: alphabetic, marks, decimal digits, connector punctuation, join controls.
bool is_word_char(int32_t cp);

// Byte range in the original text, [begin, end).
using Span = std::pair<uint32_t, uint32_t>;

// Result of NFC on a piece of text. When `identity` is true the text is unchanged and `align` is
// empty: normalized byte i aligns to the input character containing byte i. Otherwise `text` is
// the normalized string and align[i] is the input byte range of normalized byte i (absolute:
// already shifted by the piece's offset).
struct Normalized {
    bool identity = true;
    std::string text;
    std::vector<Span> align;
};

// NFC of input[begin, end) (assumed valid UTF-8), alignments absolute in `input`.
void nfc(std::string_view input, size_t begin, size_t end, Normalized* out);

// Plain NFC of a string (no alignments); used to normalise added-token contents.
std::string nfc_string(std::string_view s);

}  // namespace polymoe::tokenizer
