// Fault injection for crash tests. With POLYMOE_FAULT_INJECT=<site>:<k> in the environment, the
// k-th call of fault_point(<site>) in this process prints where it is and raises SIGKILL: the
// process dies as under `kill -9` (no destructors, no flush, no atexit), which is what crash
// safety must survive. Without the variable a fault point is one relaxed atomic load.
//
// Sites: "checkpoint" (every step of writing a checkpoint directory: temporary directory, each
// file, fsyncs, renames, pruning; see io/hf_checkpoint.cpp and train/trainer.cpp).
//
// fault_hit() is the non-lethal variant for numeric faults: it returns true at the k-th pass
// instead of killing. Site "grad" (train/trainer.cpp): at training step k a NaN is written into
// the first gradient element of the middle trainable parameter, to test that a non-finite
// gradient norm stops the run and names that parameter.
#pragma once

#include <string_view>

namespace polymoe {

// Counts a pass through a fault point of `site`; `what` names the point in the message printed
// before the kill. A malformed POLYMOE_FAULT_INJECT is reported once on stderr and ignored.
void fault_point(std::string_view site, std::string_view what);

// Counts a pass through `site`; true exactly at the k-th pass of POLYMOE_FAULT_INJECT=<site>:<k>.
bool fault_hit(std::string_view site);

}  // namespace polymoe
