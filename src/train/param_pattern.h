// Parameter-name patterns: which parameters `--trainable` trains (the others are frozen: no
// gradient buffer, no optimizer state, values unchanged). A pattern is a comma-separated list of
// terms over HF parameter names (model.layers.3.mlp.experts.7.down_proj.weight):
//
//   GLOB        shell glob over the whole name: * any run of characters (dots included), ? one
//               character, [2-5] a character class, {a,b,c} alternatives, {12..15} a numeric
//               range (braces expand before matching; commas inside braces do not split terms)
//   re:REGEX    POSIX extended regular expression matched against the whole name
//   GROUP       all, routers (*.mlp.gate.weight), experts (*.mlp.experts.*), attention
//               (*.self_attn.*, q/k norms included), norms (*norm*), embeddings
//               (model.embed_tokens.weight and lm_head.weight)
//   !TERM       exclude what TERM matches; a pattern of exclusions only starts from all
//
// Examples: `routers`; `model.layers.{12..15}.*` (the last four of 16 layers);
// `model.layers.*.mlp.experts.{3,7}.*` (experts 3 and 7 of every layer); `all,!embeddings`.
// A term that matches no parameter is an error naming it (a typo must not silently freeze
// everything), as is a pattern that selects nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/params.h"

namespace polymoe::train {

struct ParamSelection {
    std::vector<uint8_t> selected;  // [params] 1 = selected
    int64_t tensors = 0, elements = 0;
};

// Throws polymoe::Error "[train] <flag> '<pattern>': ..." for a malformed pattern or a term that
// matches nothing.
ParamSelection select_params(const model::ParamTable& table,
                             const std::string& pattern,
                             std::string_view flag);

// The terms of `pattern` after splitting at top-level commas (for messages and tests).
std::vector<std::string> split_pattern_terms(const std::string& pattern);

}  // namespace polymoe::train
