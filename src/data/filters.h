// Document filters applied by `polymoe prepare` before tokenization.
//
// Exact-duplicate removal: a document whose bytes equal an earlier document of the same language
// is dropped (128-bit hash of the text; a false match needs a 2^-64 collision).
//
// Repetition filter: the Gopher rules (Rae et al. 2021, "Scaling Language Models", Table A1),
// which Dolma applies to OLMo's web data. Words are whitespace-separated; a document is dropped if
//   - the most frequent word n-gram covers more than 20% / 18% / 16% of the characters in words,
//     for n = 2 / 3 / 4 (characters of one occurrence times its count over all word characters);
//   - the words inside duplicated n-grams (every occurrence of an n-gram seen more than once)
//     cover more than 15% / 14% / 13% / 12% / 11% / 10% of those characters, for n = 5 … 10;
//   - more than 30% of its lines duplicate an earlier line, or duplicated lines hold more than
//     20% of its characters.
// Scripts written without spaces (Chinese) yield few "words", so the word rules rarely fire
// there; the line rules still apply.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace polymoe::data {

// Name of the first Gopher rule `text` violates, or nullptr if it passes.
const char* repetition_violation(std::string_view text);

// 128-bit hash of text for duplicate detection (two independent 64-bit FNV-style lanes).
std::pair<uint64_t, uint64_t> text_hash(std::string_view text);

}  // namespace polymoe::data
