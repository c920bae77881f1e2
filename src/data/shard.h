// Token shards: the tokenized corpus of one language and split, written by `polymoe prepare` and
// memory-mapped by the trainer, trace and eval. Little-endian binary, version 1:
//
//   offset  size  field
//   0       8     magic "PMSHARD\0"
//   8       4     u32 version (1)
//   12      4     u32 header_bytes: length of the JSON header at offset 64
//   16      8     u64 num_documents
//   24      8     u64 num_tokens
//   32      8     u64 tokenizer_hash (FNV-1a 64 of the tokenizer.json bytes)
//   40      8     u64 tokens_offset (multiple of 64)
//   48      8     u64 docs_offset (multiple of 8)
//   56      8     reserved (0)
//   64      …     JSON header: {"language": {code, name, script, family, stage, related},
//                 "split": "train"|"heldout", "tokenizer": file name, "vocab_size": V}
//   tokens_offset u32 tokens[num_tokens]  (documents back to back, no separators)
//   docs_offset   u64 doc_start[num_documents + 1]  (doc i = tokens[doc_start[i], doc_start[i+1]))
//                 i64 doc_passage[num_documents]    (parallel-passage id, -1 if none)
//
// The file size must equal docs_offset + 8·(2·num_documents + 1); anything else is a truncated or
// corrupt shard. Writers stream tokens to "<path>.tmp" and rename when complete, so a crash never
// leaves a shard that looks valid.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "data/language.h"
#include "io/mapped_file.h"

namespace polymoe::data {

inline constexpr uint32_t kShardVersion = 1;

struct ShardMeta {
    LanguageInfo language;
    std::string split;      // "train" or "heldout"
    std::string tokenizer;  // file name of tokenizer.json
    uint64_t tokenizer_hash = 0;
    int64_t vocab_size = 0;
};

class ShardWriter {
public:
    ShardWriter(const std::string& path, const ShardMeta& meta);
    ~ShardWriter();  // removes the temporary file unless finish() ran
    ShardWriter(const ShardWriter&) = delete;
    ShardWriter& operator=(const ShardWriter&) = delete;
    void add_document(std::span<const int32_t> ids, int64_t passage);
    // Writes the tables and header, fsyncs and renames to the final path.
    void finish();
    int64_t num_documents() const { return static_cast<int64_t>(passages_.size()); }
    int64_t num_tokens() const { return num_tokens_; }

private:
    std::string path_, tmp_;
    ShardMeta meta_;
    FILE* f_ = nullptr;
    std::vector<uint64_t> starts_{0};
    std::vector<int64_t> passages_;
    int64_t num_tokens_ = 0;
    uint64_t tokens_offset_ = 0;
    bool finished_ = false;
};

class Shard {
public:
    // Maps and validates; errors name the file and the field.
    static Shard open(const std::string& path);
    const ShardMeta& meta() const { return meta_; }
    int64_t num_documents() const { return num_documents_; }
    int64_t num_tokens() const { return num_tokens_; }
    std::span<const uint32_t> document(int64_t i) const {
        return {tokens_ + starts_[i], static_cast<size_t>(starts_[i + 1] - starts_[i])};
    }
    int64_t passage(int64_t i) const { return passages_[i]; }
    std::span<const uint32_t> tokens() const { return {tokens_, static_cast<size_t>(num_tokens_)}; }
    const std::string& path() const { return file_.path(); }

private:
    io::MappedFile file_;
    ShardMeta meta_;
    int64_t num_documents_ = 0, num_tokens_ = 0;
    const uint32_t* tokens_ = nullptr;
    const uint64_t* starts_ = nullptr;
    const int64_t* passages_ = nullptr;
};

// The shards of one language and split in a prepared directory, in file-name order:
// DIR/<code>.<split>.<nnnnn>.shard. Documents are numbered across them in that order.
class ShardSet {
public:
    static ShardSet open(const std::string& dir, const std::string& code, const std::string& split);
    const std::vector<Shard>& shards() const { return shards_; }
    int64_t num_documents() const { return num_documents_; }
    int64_t num_tokens() const { return num_tokens_; }
    std::span<const uint32_t> document(int64_t i) const;
    int64_t passage(int64_t i) const;
    const ShardMeta& meta() const { return shards_.front().meta(); }

private:
    std::vector<Shard> shards_;
    std::vector<int64_t> first_doc_;  // document index where each shard starts
    int64_t num_documents_ = 0, num_tokens_ = 0;
    std::pair<size_t, int64_t> locate(int64_t i) const;
};

std::string shard_file_name(const std::string& code, const std::string& split, int index);

}  // namespace polymoe::data
