// Fuzz target: a corpus manifest (data::load_manifest, YAML), written into a scratch folder that
// also holds a.txt and b.jsonl for its globs to match. Inputs containing '/' or '\' are skipped so
// that no pattern (including one spelled with YAML escapes) can reach outside that folder: a glob
// over the whole file system would turn the fuzzer into a disk scanner without testing anything
// new. Every language, source and held-out rule of an accepted manifest is then queried.
#include <algorithm>

#include "data/manifest.h"
#include "fuzz_targets.h"
#include "fuzz_util.h"

namespace polymoe::fuzz {

int fuzz_manifest(const uint8_t* data, size_t size) {
    if (std::find_if(data, data + size, [](uint8_t c) { return c == '/' || c == '\\'; }) !=
        data + size)
        return 0;
    static const bool files = [] {
        write_scratch("manifest/a.txt", "hello\n\nworld\n", 13);
        write_scratch("manifest/b.jsonl", "{\"text\": \"x\"}\n", 14);
        return true;
    }();
    (void)files;
    return guarded([&] {
        std::string path = write_scratch("manifest/manifest.yaml", data, size);
        data::Manifest m = data::load_manifest(path);
        int64_t n = 0;
        for (const data::LanguageSpec& l : m.languages)
            for (const data::SourceSpec& s : l.sources)
                n += static_cast<int64_t>(s.files.size());
        for (int64_t i = 0; i < 16; ++i)
            n += m.heldout.is_heldout(i, i % 3 - 1) ? 1 : 0;
        n += static_cast<int64_t>(m.language_infos().size());
        (void)n;
    });
}

}  // namespace polymoe::fuzz
