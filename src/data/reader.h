// Streaming document readers for corpus sources: .txt (one document per blank-line-separated
// block, or the whole file) and .jsonl (one JSON object per line, text in a named field, an
// optional integer passage id), each optionally compressed (.gz via zlib, .zst via libzstd).
// Reading is streaming with bounded memory (a document is the unit held in memory), so a corpus
// never has to fit in RAM. Line endings are normalised to "\n" (CRLF and lone CR).
//
// Error policy: structural problems (a file that cannot be opened, a truncated or corrupt
// compressed stream, a .jsonl line that is not JSON or lacks the text field) are errors naming
// the file and line; content problems (invalid UTF-8, NUL bytes, empty documents) are reported in
// Document::problem and counted by the caller, who skips the document.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data/manifest.h"

namespace polymoe::data {

enum class DocProblem { kNone, kInvalidUtf8, kNulByte, kEmpty };
const char* problem_name(DocProblem p);

struct Document {
    std::string text;
    int64_t passage = -1;
    int64_t line = 0;  // 1-based line in the (decompressed) file where the document starts
    DocProblem problem = DocProblem::kNone;
};

// A decompressing byte stream chosen by the file name's extension.
class ByteStream {
public:
    virtual ~ByteStream() = default;
    // Reads up to n bytes; returns 0 only at the end. Throws on I/O or decompression errors.
    virtual size_t read(char* buf, size_t n) = 0;
    // Bytes consumed from the file on disk so far (for progress).
    virtual uint64_t compressed_pos() const = 0;
};
std::unique_ptr<ByteStream> open_byte_stream(const std::string& path);

// Longest line, and longest document, a reader accepts (64 MiB). A hostile or broken file (a
// multi-gigabyte file without line breaks, say) then fails with an error naming the file and
// line instead of growing one string until the machine runs out of memory.
inline constexpr size_t kMaxLineBytes = size_t{64} << 20;

class DocumentReader {
public:
    // `max_bytes` bounds every line and every document (tests lower it).
    DocumentReader(const SourceSpec& spec,
                   const std::string& file,
                   size_t max_bytes = kMaxLineBytes);
    ~DocumentReader();
    // Next document, or false at the end of the file.
    bool next(Document* doc);
    uint64_t compressed_pos() const;

private:
    bool next_line(std::string* line);
    void classify(Document* doc) const;
    // Appends `piece` (and a '\n' first if `newline`) to a document, within max_bytes_.
    void append_to_document(Document* d, const std::string& piece, bool newline) const;

    const SourceSpec& spec_;
    std::string file_;
    bool jsonl_;
    std::unique_ptr<ByteStream> in_;
    std::string buf_;
    size_t pos_ = 0;
    bool eof_ = false;
    bool done_ = false;
    int64_t line_ = 0;
    size_t max_bytes_;
};

// True if s is valid UTF-8 (no overlongs, no surrogates); *chars gets the code point count.
bool utf8_valid(std::string_view s, int64_t* chars);

}  // namespace polymoe::data
