// What a study knows about one language: its code, script, family, training stage and, for a
// low-resource language, the related high-resource language whose experts it may reuse. Declared
// in the corpus manifest (data), copied into token shards' and routing traces' headers, and read
// by the analysis (expert reuse compares a language with its `related` one).
#pragma once

#include <string>
#include <vector>

namespace polymoe::data {

struct LanguageInfo {
    std::string code;     // manifest key: ISO 639-3 (+ variant), e.g. "arb", "pes_1", "cmn_hans"
    std::string name;     // human name, e.g. "Farsi (Western)"; may be empty
    std::string script;   // ISO 15924-style, e.g. "Arab", "Cyrl", "Deva", "Latn", "Hans", "Hant"
    std::string family;   // e.g. "Indo-European/Romance"
    std::string stage;    // "base", "1", "2" or any named stage
    std::string related;  // code of the related high-resource language, or empty
};

// Index of `code` in `langs`, or -1.
inline int find_language(const std::vector<LanguageInfo>& langs, const std::string& code) {
    for (size_t i = 0; i < langs.size(); ++i)
        if (langs[i].code == code) return static_cast<int>(i);
    return -1;
}

}  // namespace polymoe::data
