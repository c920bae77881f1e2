// polymoe's fuzz targets as plain functions: each takes arbitrary bytes and feeds them to the
// project's real parsing entry points (readers of checkpoints, configs, tokenizers, corpora,
// shards, traces, manifests, .npy/.npz). A polymoe::Error is the accepted outcome for bad input
// and is swallowed; anything else (another exception type, a sanitizer report, a crash) escapes.
// The same functions back the libFuzzer binaries (fuzz/libfuzzer_main.cpp, clang, -DPOLYMOE_FUZZ)
// and the replay unit test (fuzz/replay_test.cpp, any compiler), which runs every committed seed
// and regression input so CI exercises them under ASan+UBSan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace polymoe::fuzz {

using TargetFn = int (*)(const uint8_t* data, size_t size);

struct Target {
    std::string_view name;  // also the folder under fuzz/corpus/ and fuzz/regressions/
    TargetFn fn;
};

int fuzz_safetensors(const uint8_t* data, size_t size);
int fuzz_hf_config(const uint8_t* data, size_t size);
int fuzz_hf_index(const uint8_t* data, size_t size);
int fuzz_tokenizer(const uint8_t* data, size_t size);
int fuzz_reader(const uint8_t* data, size_t size);
int fuzz_shard(const uint8_t* data, size_t size);
int fuzz_trace(const uint8_t* data, size_t size);
int fuzz_manifest(const uint8_t* data, size_t size);
int fuzz_stage_config(const uint8_t* data, size_t size);
int fuzz_npy(const uint8_t* data, size_t size);
int fuzz_npz(const uint8_t* data, size_t size);

// Every target, in a fixed order.
std::span<const Target> all_targets();

}  // namespace polymoe::fuzz
