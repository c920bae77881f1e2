// The corpus manifest (YAML): the languages of a study, their metadata (LanguageInfo), their
// sources and the held-out split rule. Validation is strict because a silently ignored key or a
// missing file would change a study without anyone noticing: unknown keys, missing files, globs
// that match nothing, duplicate languages and `related` codes that name no language are errors
// naming the manifest and its line.
//
//   version: 1
//   heldout: {passages: [5, 10]}      # or {fraction: 0.1} (by a hash of the document's index)
//   prepare: {dedup: true, repetition_filter: false}   # optional defaults for `polymoe prepare`
//   languages:
//     spa:
//       name: Spanish
//       script: Latn
//       family: Indo-European/Romance
//       stage: "1"
//       related: ...                  # optional: the related high-resource language
//       sources:
//         - {path: udhr/spa.jsonl, text_field: text, passage_field: passage}
//         - {path: extra/*.txt, split: file}   # .txt: blank-line blocks (default) or whole file
//
// Paths are relative to the manifest's directory; `.gz` and `.zst` are decompressed on the fly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/language.h"

namespace polymoe::data {

enum class TextSplit { kBlocks, kFile };

struct SourceSpec {
    std::string pattern;                   // as written in the manifest
    std::vector<std::string> files;        // resolved, sorted
    std::string text_field = "text";       // .jsonl only
    std::string passage_field;             // .jsonl only; empty = no passage ids
    TextSplit split = TextSplit::kBlocks;  // .txt only
    int line = 0;                          // 1-based line in the manifest
};

struct HeldoutRule {
    std::vector<int64_t> passages;  // documents whose passage id is listed are held out
    double fraction = 0.0;          // else: this share of documents, chosen by hash of the index
    // True if document `index` (0-based within its language) with `passage` (-1 = none) is
    // held out.
    bool is_heldout(int64_t index, int64_t passage) const;
};

struct LanguageSpec {
    LanguageInfo info;
    std::vector<SourceSpec> sources;
    int line = 0;
};

struct Manifest {
    std::string path;  // as given
    int version = 1;
    HeldoutRule heldout;
    bool dedup = true;
    bool repetition_filter = false;
    std::vector<LanguageSpec> languages;

    std::vector<LanguageInfo> language_infos() const;
};

// Parses and validates; throws polymoe::Error "[manifest] FILE:LINE: ...".
Manifest load_manifest(const std::string& path);

}  // namespace polymoe::data
