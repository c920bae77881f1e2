// Per-token routing tables as NumPy .npz archives, the exchange format with tools that are not
// polymoe (vLLM's returned routed experts, Hugging Face forward hooks, released routing data):
// import_table() turns a table into a routing trace, export_table() writes a trace as a table.
// Schema (docs/formats.md, "Per-token routing table"), T tokens, L recorded layers, K experts:
//
//   lang [T] int (required)          group index (a language, or a domain) into lang_names
//   lang_names [n] str (required)    group names ('<U..'); index = code
//   topk_ids [T, L, K] int (required) routed experts, distinct within a (token, layer) row
//   topk_weights [T, L, K] float     routing weights (absent: 0, so weight estimators are null)
//   doc [T] int                      document id (absent: every token its own document)
//   token [T] int, passage [T] int, position [T] int (absent: 0, -1, order within the document)
//   layers [L] int                   model layer numbers (default 0..L-1)
//   num_experts [] int               E (default max id + 1)
//   rank_ordered [] bool             topk_ids[..., 0] is the top-1 expert (default true)
//   router_logits [T, L, E] float    all router logits (polymoe exports traces that have them)
//   polymoe_header [] str            the trace's JSON header (language metadata, model, label)
//
// Any integer or float dtype (either byte order) is accepted where an integer is expected, as
// long as its values are integral and in range; keys outside the schema are ignored. Every
// error names the archive and the key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace polymoe::trace {

struct TableImportResult {
    int64_t tokens = 0, documents = 0;
    int num_experts = 0, top_k = 0, layers = 0, groups = 0;
    std::vector<std::string> notes;  // defaults applied (e.g. "doc absent: ..."), for the user
    uint64_t npz_bytes = 0, trace_bytes = 0;
    double seconds = 0;
};

struct TableExportResult {
    int64_t tokens = 0;
    uint64_t trace_bytes = 0, npz_bytes = 0;
    double seconds = 0;
};

// Reads `npz_path` and writes the trace `trace_path` (atomically, like captured traces).
// `chunk_tokens` bounds the tokens per trace chunk. Throws polymoe::Error for a bad table.
TableImportResult import_table(const std::string& npz_path,
                               const std::string& trace_path,
                               int64_t chunk_tokens = 65536);

// Writes the trace as a table with the schema above (stored members unless `compress`).
TableExportResult export_table(const std::string& trace_path,
                               const std::string& npz_path,
                               bool compress = false);

}  // namespace polymoe::trace
