// `polymoe prepare`: manifest -> per-language token shards + stats.json. Streams every source
// (bounded memory: one batch of documents at a time), drops empty / invalid-UTF-8 / NUL-containing
// documents and optionally exact duplicates and Gopher-repetitive documents (counting each
// reason), tokenizes batches in parallel, assigns each document to the train or held-out split by
// the manifest's rule, and writes DIR/<code>.<split>.<nnnnn>.shard (shard.h) plus DIR/stats.json:
// per language and split documents, bytes, characters, tokens, fertility (tokens per character
// and per byte), drop counts, and the pairwise vocabulary overlap (share of language a's distinct
// token ids that also occur in language b).
//
// Output bytes depend only on the inputs and options (no timestamps, fixed document order, the
// same for any thread count), and stats.json records a fingerprint of the inputs (file sizes and
// modification times, manifest and tokenizer hashes, options): a rerun with an unchanged
// fingerprint does nothing. stats.json is written last, atomically, so it marks a complete run.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "data/manifest.h"
#include "tokenizer/tokenizer.h"

namespace polymoe::data {

struct PrepareOptions {
    std::string out_dir;
    std::string tokenizer_path;  // for the header and fingerprint
    bool dedup = true;
    bool repetition_filter = false;
    int64_t max_shard_tokens = int64_t{1} << 30;  // start a new shard beyond this many tokens
    int64_t batch_bytes = 8 << 20;                // text per tokenization batch
    bool force = false;                           // redo even if the fingerprint matches
};

struct PrepareResult {
    bool up_to_date = false;  // nothing was done
    nlohmann::json stats;
    double seconds = 0;
    int64_t bytes_read = 0;  // bytes of document text
};

PrepareResult prepare(const Manifest& m,
                      const tokenizer::Tokenizer& tok,
                      const PrepareOptions& opt);

// Reads DIR/stats.json (written by prepare); errors name the file.
nlohmann::json read_prepared_stats(const std::string& dir);

// The prepared languages (stats.json order) restricted to `wanted` (empty: all); a wanted code
// that was not prepared is an error "[component] --languages: ...".
std::vector<std::string> select_languages(const nlohmann::json& stats,
                                          const std::vector<std::string>& wanted,
                                          const std::string& dir,
                                          std::string_view component);

}  // namespace polymoe::data
