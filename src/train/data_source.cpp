// LoaderSource (see data_source.h).
#include "train/data_source.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "data/prepare.h"

namespace polymoe::train {

LoaderSource::LoaderSource(const DataSpec& spec, int64_t B, int64_t S, int64_t vocab_size)
    : B_(B), S_(S) {
    nlohmann::json stats = data::read_prepared_stats(spec.dir);
    const int64_t eos = stats.value("eos_id", -1);
    if (eos < 0 || eos >= vocab_size)
        fail("train",
             "{}/stats.json: eos_id: expected an id below the model's vocab_size {}, "
             "found {}",
             spec.dir, vocab_size, eos);
    std::vector<data::LoaderLanguage> langs;
    std::string available;
    int num_main = 0;
    auto has = [](const std::vector<std::string>& v, const std::string& s) {
        return std::find(v.begin(), v.end(), s) != v.end();
    };
    for (const auto& [code, l] : stats.at("languages").items()) {
        const std::string stage = l.at("info").at("stage");
        available += fmt::format(" {}({})", code, stage);
        bool main = spec.stages.empty() || has(spec.stages, stage);
        bool replay = !main && has(spec.replay, stage);
        if (!main && !replay) continue;
        sets_.push_back(
            std::make_unique<data::ShardSet>(data::ShardSet::open(spec.dir, code, "train")));
        if (sets_.back()->meta().vocab_size > vocab_size)
            fail("train",
                 "{}: expected token ids below the model's vocab_size {}, found a "
                 "tokenizer with {} ids",
                 sets_.back()->shards().front().path(), vocab_size,
                 sets_.back()->meta().vocab_size);
        langs.push_back({code, sets_.back().get(), replay});
        num_main += main;
    }
    if (num_main == 0)
        fail("train", "{}: expected languages of stage(s) {}, found only{}", spec.dir,
             fmt::join(spec.stages, ","), available);
    loader_ = std::make_unique<data::BatchLoader>(std::move(langs), spec.mix, B, S,
                                                  static_cast<int32_t>(eos), spec.seed, spec.rank,
                                                  spec.world);
}

void LoaderSource::next(std::vector<int32_t>& ids,
                        std::vector<int32_t>& mask,
                        std::vector<std::string>& row_language) {
    ids.resize(static_cast<size_t>(B_ * S_));
    mask.clear();
    std::vector<int> rows;
    loader_->next(ids, &rows);
    row_language.clear();
    for (int r : rows)
        row_language.push_back(loader_->languages()[static_cast<size_t>(r)].code);
}

std::vector<std::string> LoaderSource::languages() const {
    std::vector<std::string> codes;
    for (const auto& l : loader_->languages())
        codes.push_back(l.code);
    return codes;
}

}  // namespace polymoe::train
