// Fault injection for crash tests. With POLYMOE_FAULT_INJECT=<site>:<k> in the environment, the
// k-th call of fault_point(<site>) in this process prints where it is and raises SIGKILL: the
// process dies as under `kill -9` (no destructors, no flush, no atexit), which is what crash
// safety must survive. Without the variable a fault point is one relaxed atomic load.
//
// Sites: "checkpoint" (every step of writing a checkpoint directory: temporary directory, each
// file, fsyncs, renames, pruning; see io/hf_checkpoint.cpp and train/trainer.cpp).
#pragma once

#include <string_view>

namespace polymoe {

// Counts a pass through a fault point of `site`; `what` names the point in the message printed
// before the kill. A malformed POLYMOE_FAULT_INJECT is reported once on stderr and ignored.
void fault_point(std::string_view site, std::string_view what);

}  // namespace polymoe
