// Fuzz target: the tokenizer. The first byte picks the mode: 0 loads the rest as a tokenizer.json
// (Tokenizer::from_json_text) and, if it loads, encodes and decodes the same bytes with it; 1
// encodes the rest as text with the bundled OLMo tokenizer and decodes the ids back; 2 decodes
// the rest, read as int32 ids, with the bundled tokenizer (ids out of range must be an Error).
#include <cstring>
#include <vector>

#include "fuzz_targets.h"
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

namespace polymoe::fuzz {

namespace {

const tokenizer::Tokenizer& bundled() {
    static const tokenizer::Tokenizer tok =
        tokenizer::Tokenizer::from_file(tokenizer::default_tokenizer_path());
    return tok;
}

void round_trip(const tokenizer::Tokenizer& tok, std::string_view text) {
    tokenizer::Encoding e = tok.encode(text);
    (void)tok.decode(e.ids);
    (void)tok.decode(e.ids, true);
}

}  // namespace

int fuzz_tokenizer(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const int mode = data[0] % 3;
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    return guarded([&] {
        if (mode == 0) {
            tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_json_text(rest, "fuzz.json");
            round_trip(tok, rest);
        } else if (mode == 1) {
            round_trip(bundled(), rest);
        } else {
            std::vector<int32_t> ids(rest.size() / 4);
            if (!ids.empty()) std::memcpy(ids.data(), rest.data(), ids.size() * 4);
            (void)bundled().decode(ids);
            (void)bundled().decode(ids, true);
        }
    });
}

}  // namespace polymoe::fuzz
