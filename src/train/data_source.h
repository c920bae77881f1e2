// LoaderSource: the trainer's BatchSource over prepared token shards, through the mixture
// loader (data/loader.h). It opens the training shards of the chosen stage's languages (plus
// replay languages), checks that they were made with a tokenizer whose ids fit the model, and
// reports the tokens each batch delivered per language.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "train/trainer.h"

namespace polymoe::train {

struct DataSpec {
    std::string dir;                  // prepared directory (stats.json + shards)
    std::vector<std::string> stages;  // languages whose stage is listed are trained on
    std::vector<std::string> replay;  // stages replayed with share mix.replay
    data::MixtureOptions mix;
    uint64_t seed = 0;
    int rank = 0, world = 1;
};

class LoaderSource final : public BatchSource {
public:
    LoaderSource(const DataSpec& spec, int64_t B, int64_t S, int64_t vocab_size);
    int64_t batch() const override { return B_; }
    int64_t seq() const override { return S_; }
    void next(std::vector<int32_t>& ids,
              std::vector<int32_t>& mask,
              std::vector<std::string>& row_language) override;
    std::vector<std::string> languages() const override;
    nlohmann::json state() const override { return loader_->state(); }
    void restore(const nlohmann::json& state) override { loader_->restore(state); }
    const data::BatchLoader& loader() const { return *loader_; }

private:
    int64_t B_, S_;
    std::vector<std::unique_ptr<data::ShardSet>> sets_;
    std::unique_ptr<data::BatchLoader> loader_;
};

}  // namespace polymoe::train
