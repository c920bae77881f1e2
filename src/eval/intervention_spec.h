// Routing interventions written on the command line (polymoe eval --mask/--drop/--steer/--force),
// parsed into the model::Intervention that the one forward applies:
//   --mask  3,5@0:15     remove experts 3 and 5 from the top-k candidates at layers 0..15
//   --drop  3@12:15      keep routing, zero expert 3's contribution at layers 12..15
//   --steer 3=2.0,5=-1@15  add 2.0·std(z) to expert 3's router logit (and -1·std(z) to 5's)
//   --force 0,1,2,3@0:3  route every token to exactly these experts (at least K of them)
// "@FIRST:LAST" (inclusive) or "@LAYER" selects layers; without it, every layer. Several flags
// combine layer by layer (masks and drops are unions, steering values add).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/intervention.h"

namespace polymoe::eval {

struct InterventionSpecs {
    std::vector<std::string> mask, drop, steer, force;
    bool empty() const { return mask.empty() && drop.empty() && steer.empty() && force.empty(); }
};

// Builds the intervention for a model with L layers, E experts and top-K routing. Throws
// polymoe::UsageError naming the flag and the spec for malformed text, expert ids outside
// [0, E), layers outside [0, L), a forced set smaller than K or non-finite steering.
model::Intervention parse_interventions(const InterventionSpecs& specs,
                                        int64_t L,
                                        int64_t E,
                                        int64_t K);

}  // namespace polymoe::eval
