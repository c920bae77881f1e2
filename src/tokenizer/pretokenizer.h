// GPT-2 ByteLevel pre-tokenizer: the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (leftmost-first alternation, as Oniguruma runs it in Hugging Face tokenizers) matched by hand
// over Unicode classes from utf8proc, plus the byte -> printable-character map of GPT-2's
// bytes_to_unicode, which is how byte-level vocabularies spell bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace polymoe::tokenizer {

// Splits valid UTF-8 text into pre-tokens; calls fn(begin, end) with byte ranges that tile the
// text in order.
template <typename Fn>
void split_gpt2(std::string_view text, Fn&& fn);

// Length in bytes of the pre-token starting at byte i of text (i < text.size()).
size_t gpt2_match(std::string_view text, size_t i);

template <typename Fn>
void split_gpt2(std::string_view text, Fn&& fn) {
    size_t i = 0;
    while (i < text.size()) {
        size_t n = gpt2_match(text, i);
        fn(i, i + n);
        i += n;
    }
}

// GPT-2 bytes_to_unicode: byte b is spelled as code point byte_char(b) in the vocabulary.
int32_t byte_char(uint8_t b);
// UTF-8 spelling of byte b in the vocabulary (1 or 2 bytes).
const std::string& byte_spelling(uint8_t b);
// Inverse map: code point -> byte, or -1 when cp is not a byte-level character.
int char_byte(int32_t cp);

}  // namespace polymoe::tokenizer
