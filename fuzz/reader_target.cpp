// Fuzz target: the corpus readers (data::DocumentReader over data::open_byte_stream). The first
// byte picks the file kind, .txt / .jsonl, each plain, .gz or .zst (the rest of the input is the
// file as stored, i.e. compressed bytes for .gz/.zst), and for .txt whether documents are
// blank-line blocks or whole files; every document is then read to the end.
#include "data/manifest.h"
#include "data/reader.h"
#include "fuzz_targets.h"
#include "fuzz_util.h"

namespace polymoe::fuzz {

int fuzz_reader(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    static const char* const kNames[6] = {"input.txt",      "input.jsonl",   "input.txt.gz",
                                          "input.jsonl.gz", "input.txt.zst", "input.jsonl.zst"};
    const uint8_t mode = data[0];
    return guarded([&] {
        std::string path = write_scratch(kNames[mode % 6], data + 1, size - 1);
        data::SourceSpec spec;
        spec.pattern = path;
        spec.files = {path};
        spec.split = (mode / 6) % 2 == 0 ? data::TextSplit::kBlocks : data::TextSplit::kFile;
        if ((mode / 12) % 2 == 1) spec.passage_field = "passage";
        data::DocumentReader reader(spec, path);
        data::Document doc;
        int64_t chars = 0;
        while (reader.next(&doc)) {
            (void)data::problem_name(doc.problem);
            (void)data::utf8_valid(doc.text, &chars);
            (void)reader.compressed_pos();
        }
    });
}

}  // namespace polymoe::fuzz
