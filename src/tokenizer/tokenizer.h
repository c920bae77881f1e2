// Byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json (the GPT-2 / GPT-NeoX /
// OLMo family: NFC normalizer, ByteLevel pre-tokenizer, BPE model, ByteLevel post-processor and
// decoder, added tokens). encode() reproduces HF tokenizers' Tokenizer::encode byte for byte:
// the same ids and the same offsets (here in UTF-8 bytes of the input; HF reports the same
// positions). Any tokenizer.json component this file does not implement is rejected when
// loading, naming it, instead of tokenizing differently.
//
// Pipeline (HF order): split out non-normalized added tokens on the raw text -> NFC each
// remaining piece -> split out normalized added tokens -> GPT-2 regex pre-tokens -> BPE by merge
// rank (per-thread word cache) -> ByteLevel trim_offsets. Invalid UTF-8 input is an error
// (normalizer.h); decode() turns bytes that are not UTF-8 into U+FFFD.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/normalizer.h"

namespace polymoe::tokenizer {

struct AddedToken {
    std::string content;
    int32_t id = -1;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = true;
    bool special = false;
};

// ids[i] covers input bytes [offsets[i].first, offsets[i].second).
struct Encoding {
    std::vector<int32_t> ids;
    std::vector<Span> offsets;
};

// Deliberately wrong variants for negative-control tests (never used by the CLI).
enum class Variant {
    kExact,
    kNoNfc,           // skip the normalizer
    kMergeFileOrder,  // apply the first applicable merge in the word, ignoring rank
};

class Tokenizer {
public:
    // Parses and validates tokenizer.json; `origin` names it in error messages.
    static Tokenizer from_file(const std::string& path);
    static Tokenizer from_json_text(std::string_view json, const std::string& origin);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // Throws polymoe::Error on invalid UTF-8.
    Encoding encode(std::string_view text) const;
    // Encodes every text over parallel_for (set_num_threads); same result as encode() per text.
    // All texts are validated before the parallel region.
    std::vector<Encoding> encode_batch(const std::vector<std::string_view>& texts) const;

    // Token strings -> bytes per the decoder; invalid UTF-8 becomes U+FFFD. Throws on ids out
    // of range. skip_special drops special added tokens (<|endoftext|>, <|padding|>).
    std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

    // Vocabulary string of an id (byte-level spelling, e.g. "Ġthe"); throws when out of range.
    const std::string& id_to_token(int32_t id) const;
    // -1 when absent.
    int32_t token_to_id(std::string_view token) const;
    // Number of ids (max id + 1), added tokens included.
    int32_t vocab_size() const;
    const std::vector<AddedToken>& added_tokens() const;

    void set_variant(Variant v);

private:
    struct Impl;
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The OLMo tokenizer shipped with polymoe: DIR/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json
// with DIR = $POLYMOE_DATA_DIR if that environment variable is set, else the compile-time
// POLYMOE_DATA_DIR (the source tree's data/ folder).
std::string default_tokenizer_path();
// The data directory itself ($POLYMOE_DATA_DIR or the compile-time default); the embedded corpus
// is DIR/corpus and its manifests DIR/../configs/corpus.
std::string data_dir();

}  // namespace polymoe::tokenizer
