// The registry of fuzz targets (fuzz_targets.h), used by the replay test to find each target's
// folders under fuzz/corpus/ and fuzz/regressions/.
#include <array>

#include "fuzz_targets.h"

namespace polymoe::fuzz {

std::span<const Target> all_targets() {
    static constexpr std::array<Target, 11> kTargets = {{
        {"safetensors", fuzz_safetensors},
        {"hf_config", fuzz_hf_config},
        {"hf_index", fuzz_hf_index},
        {"tokenizer", fuzz_tokenizer},
        {"reader", fuzz_reader},
        {"shard", fuzz_shard},
        {"trace", fuzz_trace},
        {"manifest", fuzz_manifest},
        {"stage_config", fuzz_stage_config},
        {"npy", fuzz_npy},
        {"npz", fuzz_npz},
    }};
    return kTargets;
}

}  // namespace polymoe::fuzz
