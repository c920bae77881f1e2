// One optimizer step's gradient over micro-batches and ranks (gradient accumulation and MPI data
// parallelism, docs/scaling.md). The global batch of a step is M = ranks x grad_accum
// micro-batches of B rows; micro-batch m (m = rank * grad_accum + k, k the local index) comes
// from its own BatchSource (the trainer gives each slot its own rows or data shard, so the data
// of a step does not depend on how the M slots are split between ranks).
//
// The loss is that of the global batch:
//   ce      mean over all counted target tokens of the global batch (not a mean of means): each
//           micro-batch's CE gradient is divided by the global token count (model::LossNorm)
//   router  lb_scope micro: the mean over the M micro-batches of each micro-batch's router terms
//           (lb/aux computed from the micro-batch's own expert counts and probabilities; the
//           behaviour of a single batch) — gradient weight 1/M.
//           lb_scope global: lb and aux from the expert counts and router-probability sums of
//           the whole global batch, all-reduced before backward. The counts must be known before
//           any backward, so each micro-batch first runs a forward without the head (about 1/3
//           more compute per step); z terms are row means either way.
// The M micro-gradients are summed along a fixed binary tree (dist::TreeAccumulator, then
// dist::Comm::tree_sum): with grad_accum a power of two, N ranks x K micro-batches gives the
// same bits as one rank with N x K micro-batches. Per-micro-batch loss partials are gathered
// and summed in micro-batch order, so the logged losses are identical too.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "model/olmoe.h"
#include "train/trainer.h"

namespace polymoe::train {

LbScope parse_lb_scope(const std::string& s);  // throws UsageError
const char* lb_scope_name(LbScope s);

struct StepStats {
    model::ForwardResult r;  // losses of the global batch (ce_tokens: global count)
    int64_t tokens = 0;      // rows x S of the global batch
    // Per language (sorted by code; global over ranks): tokens delivered, mean CE of the
    // language's predicted tokens.
    std::vector<std::pair<std::string, int64_t>> tokens_by_language;
    std::vector<std::pair<std::string, double>> ce_by_language;
};

class StepGradient {
public:
    // `sources`: this rank's grad_accum micro-batch slots, in order (all of shape [B, S]).
    StepGradient(const model::OlmoeWeights& w,
                 const model::GradLayout& layout,
                 std::vector<BatchSource*> sources,
                 model::Objective objective,
                 LbScope lb_scope,
                 bool recompute,
                 const dist::Comm& comm);
    // Draws one micro-batch from every slot and writes the step's gradient into grad
    // ([layout.total], the same bits on every rank). Returns the global batch's losses.
    StepStats compute(float* grad);

private:
    struct Micro {
        std::vector<int32_t> ids, mask;
        std::vector<std::string> row_language;
    };
    std::vector<double> router_stats(const Micro& mb);

    const model::OlmoeWeights& w_;
    const model::GradLayout& layout_;
    std::vector<BatchSource*> sources_;
    model::Objective objective_;
    LbScope scope_;
    const dist::Comm& comm_;
    int64_t B_, S_;
    std::vector<std::string> languages_;
    model::Activations a_, stats_a_;
    std::vector<float> scratch_;
    dist::TreeAccumulator acc_;
    std::vector<Micro> micro_;
};

}  // namespace polymoe::train
