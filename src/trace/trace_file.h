// The routing-trace file (*.trace), version 1, little-endian; docs/formats.md has the same table
// and tools/read_trace.py reads it with numpy.
//
//   offset  size  field
//   0       8     magic "PMTRACE\0"
//   8       4     u32 version (1)
//   12      4     u32 header_bytes: length of the JSON header at offset 64
//   16      4     u32 E (experts per layer)
//   20      4     u32 K (top-k)
//   24      4     u32 R (recorded layers)
//   28      4     u32 flags: bit 0 = router logits present
//   32      32    reserved (0)
//   64      …     JSON header {"layers": [model layer of each recorded layer], "languages":
//                 [{code, name, script, family, stage, related}], "model", "label", "data",
//                 optional "rank_ordered": false},
//                 zero-padded to a multiple of 64
//   then chunks, back to back, each starting at a multiple of 8:
//     u32 magic "CHNK", u32 n (tokens), u64 chunk_bytes (this whole chunk, head included)
//     u16 lang[n], u32 doc[n], i32 passage[n], u32 position[n], u32 token[n],
//     u16 expert[R][n][K] (rank order), f32 weight[R][n][K], f32 logits[R][n][E] (flag bit 0)
//     — each array (the [R][n][…] blocks as a whole) zero-padded to a multiple of 8 bytes.
//
// Writers append chunks to "<path>.partial" and flush each one, then rename to <path> when
// done: after a crash the .partial file still opens (TraceFile drops a torn last chunk and says
// how many tokens it recovered).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "trace/trace.h"

namespace polymoe::trace {

inline constexpr uint32_t kTraceVersion = 1;

// Column buffers of one chunk being assembled (owned, unlike TraceChunk).
struct ChunkBuffer {
    int R = 0, K = 0, E = 0;
    bool logits = false;
    std::vector<uint16_t> lang;
    std::vector<uint32_t> doc;
    std::vector<int32_t> passage;
    std::vector<uint32_t> position, token;
    std::vector<std::vector<uint16_t>> expert;  // [R][n*K]
    std::vector<std::vector<float>> weight;     // [R][n*K]
    std::vector<std::vector<float>> logit;      // [R][n*E]
    void reset(int R_, int K_, int E_, bool with_logits);
    int64_t size() const { return static_cast<int64_t>(lang.size()); }
    void clear();
};

class TraceWriter {
public:
    TraceWriter(const std::string& path, const TraceHeader& header);
    ~TraceWriter();  // leaves "<path>.partial" if finish() was not called
    TraceWriter(const TraceWriter&) = delete;
    TraceWriter& operator=(const TraceWriter&) = delete;
    void write_chunk(const ChunkBuffer& c);
    void finish();  // renames to the final path
    int64_t tokens() const { return tokens_; }

private:
    std::string path_, partial_;
    TraceHeader header_;
    FILE* f_ = nullptr;
    int64_t tokens_ = 0;
};

class TraceFile {
public:
    // Maps and validates `path`; a torn last chunk is dropped (recovered_ tells).
    static TraceFile open(const std::string& path);
    const TraceView& view() const { return view_; }
    const TraceHeader& header() const { return view_.header; }
    bool truncated() const { return truncated_; }
    const std::string& path() const { return file_.path(); }

private:
    io::MappedFile file_;
    TraceView view_;
    bool truncated_ = false;
};

std::string header_json(const TraceHeader& h);
TraceHeader parse_header_json(const std::string& text, const std::string& origin);

}  // namespace polymoe::trace
