// Routing interventions applied inside the one production forward (olmoe_forward), for causal
// tests: per layer,
//   mask  [E]: experts removed from the top-k candidate set (routing probabilities unchanged;
//              the next-best experts take the slots; see kernels/cpu/router.h);
//   drop  [E]: routing unchanged, but the expert's contribution is zeroed (its top-k weight set
//              to 0, the other weights untouched);
//   steer [E]: λ_e added to expert e's router logit in units of the token's logit standard
//              deviation over the E experts (z_e += λ_e·std(z)), before the softmax.
// Forcing a set of experts is masking its complement. Empty vectors mean "no change"; a layer
// with no entry is untouched. Interventions never apply to training (backward rejects them).
#pragma once

#include <cstdint>
#include <vector>

namespace polymoe::model {

struct LayerIntervention {
    std::vector<uint8_t> mask, drop;
    std::vector<float> steer;
    bool empty() const { return mask.empty() && drop.empty() && steer.empty(); }
};

struct Intervention {
    std::vector<LayerIntervention> layers;  // index = model layer; may be shorter than L

    const LayerIntervention* at(int64_t layer) const {
        if (layer < 0 || layer >= static_cast<int64_t>(layers.size())) return nullptr;
        const LayerIntervention& l = layers[static_cast<size_t>(layer)];
        return l.empty() ? nullptr : &l;
    }
    // Masks (or drops) `experts` at layers [first, last] of a model with E experts.
    static Intervention remove(
        const std::vector<int>& experts, int first, int last, int64_t E, bool drop = false);
    // Routes every token to `experts` (|experts| >= K) at layers [first, last].
    static Intervention force(const std::vector<int>& experts, int first, int last, int64_t E);
};

}  // namespace polymoe::model
