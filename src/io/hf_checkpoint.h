// Hugging Face checkpoint directories: config.json, generation_config.json, and either
// model.safetensors or model-0000i-of-0000N.safetensors + model.safetensors.index.json
// ({"metadata": {"total_size": bytes}, "weight_map": {tensor: file}}). The reader opens every
// shard memory-mapped and checks that the index and the shards agree (a tensor listed but absent,
// present twice, or in a shard the index does not name is an error). The writer builds the
// directory under a temporary name, fsyncs, and renames it into place, so a checkpoint directory
// only ever appears complete. The config is handled as JSON here; model/config.h interprets it.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/safetensors.h"

namespace polymoe::io {

class HfCheckpoint {
public:
    // Opens `dir`; throws polymoe::Error naming the file when anything is missing or malformed.
    static HfCheckpoint open(const std::string& dir);

    const std::string& dir() const { return dir_; }
    const nlohmann::json& config() const { return config_; }
    // generation_config.json, or null when the directory has none (it is optional).
    const nlohmann::json& generation_config() const { return generation_config_; }
    // All tensor names, sorted.
    std::vector<std::string> tensor_names() const;
    // Tensor metadata and the shard holding it; nullptr if absent.
    const TensorInfo* find(const std::string& name, const SafetensorsFile** file = nullptr) const;

private:
    std::string dir_;
    nlohmann::json config_;
    nlohmann::json generation_config_;
    std::vector<SafetensorsFile> shards_;
    std::map<std::string, std::pair<size_t, const TensorInfo*>> where_;  // name -> shard, info
};

// Writes an HF checkpoint directory at `dir` (must not exist yet, or is replaced when
// `overwrite`). Tensors are split over `num_shards` files in the given order, balanced by bytes
// (num_shards == 1 writes model.safetensors and no index). A null generation_config writes no
// generation_config.json. `extra(tmp_dir)`, when given, writes further files (optimizer and
// trainer state) into the directory before it is renamed into place, so they appear atomically
// with the weights.
void write_hf_checkpoint(const std::string& dir,
                         const nlohmann::json& config,
                         const nlohmann::json& generation_config,
                         const std::vector<TensorToWrite>& tensors,
                         int num_shards,
                         bool overwrite = false,
                         const std::function<void(const std::string&)>& extra = {});

// Writes `text` to `path` and fsyncs the file: for the extra files an `extra` callback writes into
// the temporary directory (which is then fsynced and renamed as a whole).
void write_checkpoint_file(const std::string& path, std::string_view text);

}  // namespace polymoe::io
