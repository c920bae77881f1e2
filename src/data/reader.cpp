// Document readers over plain, gzip and zstd byte streams (see reader.h).
#include "data/reader.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "tokenizer/normalizer.h"

namespace polymoe::data {

namespace {

bool ends_with(const std::string& s, const char* suffix) {
    size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

class PlainStream final : public ByteStream {
public:
    explicit PlainStream(const std::string& path) : path_(path) {
        f_ = std::fopen(path.c_str(), "rb");
        if (!f_) fail("data", "{}: cannot open: {}", path, std::strerror(errno));
    }
    ~PlainStream() override { std::fclose(f_); }
    size_t read(char* buf, size_t n) override {
        size_t r = std::fread(buf, 1, n, f_);
        if (r < n && std::ferror(f_)) fail("data", "{}: read error", path_);
        pos_ += r;
        return r;
    }
    uint64_t compressed_pos() const override { return pos_; }

private:
    std::string path_;
    FILE* f_ = nullptr;
    uint64_t pos_ = 0;
};

class GzipStream final : public ByteStream {
public:
    explicit GzipStream(const std::string& path) : path_(path), raw_(path) {
        if (inflateInit2(&z_, 15 + 32) != Z_OK) fail("data", "{}: zlib init failed", path);
    }
    ~GzipStream() override { inflateEnd(&z_); }
    size_t read(char* buf, size_t n) override {
        z_.next_out = reinterpret_cast<Bytef*>(buf);
        z_.avail_out = static_cast<uInt>(n);
        while (z_.avail_out > 0) {
            if (z_.avail_in == 0) {
                size_t r = raw_.read(in_, sizeof(in_));
                if (r == 0) {
                    if (!ended_)
                        fail("data", "{}: expected a complete gzip stream, found it truncated",
                             path_);
                    break;
                }
                z_.next_in = reinterpret_cast<Bytef*>(in_);
                z_.avail_in = static_cast<uInt>(r);
            }
            if (ended_) {  // concatenated gzip members (as `cat a.gz b.gz` produces)
                inflateReset(&z_);
                ended_ = false;
            }
            int rc = inflate(&z_, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) {
                ended_ = true;
            } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
                fail("data", "{}: expected gzip data, found a corrupt stream ({})", path_,
                     z_.msg ? z_.msg : "zlib error");
            }
        }
        return n - z_.avail_out;
    }
    uint64_t compressed_pos() const override { return raw_.compressed_pos(); }

private:
    std::string path_;
    PlainStream raw_;
    z_stream z_{};
    char in_[1 << 16];
    bool ended_ = false;
};

class ZstdStream final : public ByteStream {
public:
    explicit ZstdStream(const std::string& path) : path_(path), raw_(path) {
        ctx_ = ZSTD_createDCtx();
        in_.resize(ZSTD_DStreamInSize());
    }
    ~ZstdStream() override { ZSTD_freeDCtx(ctx_); }
    size_t read(char* buf, size_t n) override {
        ZSTD_outBuffer out{buf, n, 0};
        while (out.pos < out.size) {
            if (ib_.pos == ib_.size) {
                size_t r = raw_.read(in_.data(), in_.size());
                if (r == 0) {
                    if (pending_ != 0)
                        fail("data", "{}: expected a complete zstd frame, found it truncated",
                             path_);
                    break;
                }
                ib_ = ZSTD_inBuffer{in_.data(), r, 0};
            }
            size_t rc = ZSTD_decompressStream(ctx_, &out, &ib_);
            if (ZSTD_isError(rc))
                fail("data", "{}: expected zstd data, found a corrupt stream ({})", path_,
                     ZSTD_getErrorName(rc));
            pending_ = rc;
        }
        return out.pos;
    }
    uint64_t compressed_pos() const override { return raw_.compressed_pos(); }

private:
    std::string path_;
    PlainStream raw_;
    ZSTD_DCtx* ctx_ = nullptr;
    std::vector<char> in_;
    ZSTD_inBuffer ib_{nullptr, 0, 0};
    size_t pending_ = 1;  // 0 once a frame is complete
};

bool blank(const std::string& s) {
    return s.find_first_not_of(" \t\f\v") == std::string::npos;
}

}  // namespace

const char* problem_name(DocProblem p) {
    switch (p) {
        case DocProblem::kNone:
            return "ok";
        case DocProblem::kInvalidUtf8:
            return "invalid_utf8";
        case DocProblem::kNulByte:
            return "nul_byte";
        case DocProblem::kEmpty:
            return "empty";
    }
    return "?";
}

std::unique_ptr<ByteStream> open_byte_stream(const std::string& path) {
    if (ends_with(path, ".gz")) return std::make_unique<GzipStream>(path);
    if (ends_with(path, ".zst")) return std::make_unique<ZstdStream>(path);
    return std::make_unique<PlainStream>(path);
}

bool utf8_valid(std::string_view s, int64_t* chars) {
    int64_t n = 0;
    size_t i = 0;
    while (i < s.size()) {
        // ASCII fast path, 8 bytes at a time.
        if (i + 8 <= s.size()) {
            uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                n += 8;
                continue;
            }
        }
        int32_t cp;
        int len = tokenizer::utf8_decode(s, i, &cp);
        if (len == 0) return false;
        i += static_cast<size_t>(len);
        ++n;
    }
    if (chars) *chars = n;
    return true;
}

DocumentReader::DocumentReader(const SourceSpec& spec, const std::string& file, size_t max_bytes)
    : spec_(spec),
      file_(file),
      jsonl_(ends_with(file, ".jsonl") || ends_with(file, ".jsonl.gz") ||
             ends_with(file, ".jsonl.zst")),
      in_(open_byte_stream(file)),
      max_bytes_(max_bytes) {}

DocumentReader::~DocumentReader() = default;

uint64_t DocumentReader::compressed_pos() const {
    return in_->compressed_pos();
}

// Lines without their terminator; "\r\n" and a lone "\r" both end a line.
bool DocumentReader::next_line(std::string* line) {
    line->clear();
    for (;;) {
        if (pos_ == buf_.size()) {
            if (eof_) {
                if (line->empty()) return false;  // a last line without its terminator
                ++line_;
                return true;
            }
            buf_.resize(1 << 20);
            size_t r = in_->read(buf_.data(), buf_.size());
            buf_.resize(r);
            pos_ = 0;
            if (r == 0) eof_ = true;
            continue;
        }
        size_t e = pos_;
        while (e < buf_.size() && buf_[e] != '\n' && buf_[e] != '\r')
            ++e;
        if (e - pos_ > max_bytes_ - line->size())
            fail("data", "{}:{}: expected lines of at most {} bytes, found a longer one", file_,
                 line_ + 1, max_bytes_);
        line->append(buf_, pos_, e - pos_);
        if (e == buf_.size()) {
            pos_ = e;
            continue;
        }
        char c = buf_[e];
        pos_ = e + 1;
        if (c == '\r') {  // swallow the '\n' of "\r\n", possibly in the next buffer
            if (pos_ == buf_.size() && !eof_) {
                buf_.resize(1 << 20);
                size_t r = in_->read(buf_.data(), buf_.size());
                buf_.resize(r);
                pos_ = 0;
                if (r == 0) eof_ = true;
            }
            if (pos_ < buf_.size() && buf_[pos_] == '\n') ++pos_;
        }
        ++line_;
        return true;
    }
}

void DocumentReader::classify(Document* d) const {
    d->problem = DocProblem::kNone;
    if (blank(d->text))
        d->problem = DocProblem::kEmpty;
    else if (d->text.find('\0') != std::string::npos)
        d->problem = DocProblem::kNulByte;
    else if (!utf8_valid(d->text, nullptr))
        d->problem = DocProblem::kInvalidUtf8;
}

bool DocumentReader::next(Document* d) {
    d->text.clear();
    d->passage = -1;
    std::string line;
    if (jsonl_) {
        for (;;) {
            if (!next_line(&line)) return false;
            if (!blank(line)) break;
        }
        d->line = line_;
        // Invalid UTF-8 is a content problem (count and skip), not a JSON syntax error.
        if (!utf8_valid(line, nullptr)) {
            d->problem = DocProblem::kInvalidUtf8;
            return true;
        }
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception&) {
            fail("data", "{}:{}: expected a JSON object, found invalid JSON", file_, line_);
        }
        if (!j.is_object())
            fail("data", "{}:{}: expected a JSON object, found {}", file_, line_, j.type_name());
        auto t = j.find(spec_.text_field);
        if (t == j.end() || !t->is_string())
            fail("data", "{}:{}: expected a string field \"{}\", found {}", file_, line_,
                 spec_.text_field, t == j.end() ? "none" : t->type_name());
        d->text = t->get<std::string>();
        // Line endings inside JSON strings are normalised like those of text files, in one
        // pass (erasing each '\r' in place would be quadratic in a string of "\r\n"s).
        std::string& text = d->text;
        size_t out = 0;
        for (size_t i = 0; i < text.size(); ++i) {
            if (text[i] != '\r')
                text[out++] = text[i];
            else if (i + 1 >= text.size() || text[i + 1] != '\n')
                text[out++] = '\n';  // a lone '\r'; the '\r' of "\r\n" is dropped
        }
        text.resize(out);
        if (!spec_.passage_field.empty()) {
            auto p = j.find(spec_.passage_field);
            if (p == j.end() || !p->is_number_integer())
                fail("data", "{}:{}: expected an integer field \"{}\", found {}", file_, line_,
                     spec_.passage_field, p == j.end() ? "none" : p->type_name());
            d->passage = p->get<int64_t>();
        }
        classify(d);
        return true;
    }
    if (spec_.split == TextSplit::kFile) {
        if (done_) return false;
        // An empty file is one empty document, reported as such by classify().
        d->line = 1;
        for (bool first = true; next_line(&line); first = false)
            append_to_document(d, line, !first);
        done_ = true;
        classify(d);
        return true;
    }
    // Blocks: skip blank lines, then gather lines up to the next blank line.
    for (;;) {
        if (!next_line(&line)) return false;
        if (!blank(line)) break;
    }
    d->line = line_;
    d->text = line;
    while (next_line(&line) && !blank(line))
        append_to_document(d, line, true);
    classify(d);
    return true;
}

void DocumentReader::append_to_document(Document* d, const std::string& piece, bool newline) const {
    if (piece.size() + (newline ? 1 : 0) > max_bytes_ - d->text.size())
        fail("data", "{}:{}: expected documents of at most {} bytes, found a longer one", file_,
             d->line, max_bytes_);
    if (newline) d->text += '\n';
    d->text += piece;
}

}  // namespace polymoe::data
