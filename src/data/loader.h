// The training batch loader: [B, S] token batches drawn from a stage's languages under a stated
// mixture policy, OLMo-style packing (documents back to back, each followed by EOS, rows cut
// every S tokens regardless of document boundaries), deterministic and resumable.
//
// Mixture: p_i for language i from its training-token count n_i
//   uniform       p_i ∝ 1
//   proportional  p_i ∝ n_i
//   temperature   p_i ∝ n_i^(1/T)            (T = 1 is proportional, T → ∞ uniform)
//   unimax        UniMax (Chung et al. 2023): spread a token budget uniformly over languages,
//                 capping each at max_epochs · n_i and handing the excess to the others
//                 (smallest languages first); p_i ∝ allocation_i
// Replay: languages marked `replay` (earlier stages) share `replay` of the probability, with
// the same policy applied among them; the stage's own languages share 1 − replay.
// With max_epochs > 0, a language whose cursor has used max_epochs epochs is dropped from the
// draw (probabilities renormalised); when every language is exhausted next() throws.
//
// Determinism: row r of rank k picks its language from uniform(seed, k, r); each language walks
// its documents in a per-epoch permutation seeded by (seed, language, epoch). The state (rows
// drawn, per-language epoch/position/offset, tokens delivered) is small JSON; restore() resumes
// exactly. Ranks: rank k of W owns the documents with index ≡ k (mod W), so ranks never see the
// same document in an epoch.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "data/shard.h"

namespace polymoe::data {

enum class MixPolicy { kUniform, kProportional, kTemperature, kUniMax };
MixPolicy parse_mix_policy(const std::string& s);  // throws UsageError
const char* mix_policy_name(MixPolicy p);

struct MixtureOptions {
    MixPolicy policy = MixPolicy::kTemperature;
    double temperature = 1.0;
    double max_epochs = 0;      // 0 = no cap
    int64_t budget_tokens = 0;  // unimax: total tokens the run will draw (all ranks)
    double replay = 0.0;        // share of replay languages
};

struct LoaderLanguage {
    std::string code;
    const ShardSet* shards = nullptr;  // training split; must outlive the loader
    bool replay = false;
};

// p_i per policy (sums to 1); exposed for tests and the run log.
std::vector<double> mixture_probabilities(const std::vector<int64_t>& tokens,
                                          const std::vector<bool>& replay,
                                          const MixtureOptions& o);

class BatchLoader {
public:
    BatchLoader(std::vector<LoaderLanguage> langs,
                MixtureOptions mix,
                int64_t batch,
                int64_t seq,
                int32_t eos_id,
                uint64_t seed,
                int rank = 0,
                int world = 1);
    // Fills out[B*S]; row_lang (optional) receives each row's language index.
    void next(std::span<int32_t> out, std::vector<int>* row_lang = nullptr);
    const std::vector<double>& probabilities() const { return p_; }
    // Tokens delivered per language by this rank so far (EOS separators included).
    std::vector<int64_t> delivered() const;
    nlohmann::json state() const;
    void restore(const nlohmann::json& state);  // throws polymoe::Error on a mismatched state
    const std::vector<LoaderLanguage>& languages() const { return langs_; }

private:
    struct Cursor {
        int64_t epoch = 0, pos = 0, offset = 0, delivered = 0;
        std::vector<int64_t> perm;  // this rank's documents in this epoch's order
    };
    void build_perm(int li);
    void fill_row(int li, int32_t* row);
    int pick(uint64_t row);

    std::vector<LoaderLanguage> langs_;
    MixtureOptions mix_;
    int64_t B_, S_;
    int32_t eos_;
    uint64_t seed_;
    int rank_, world_;
    std::vector<double> p_;
    std::vector<Cursor> cur_;
    uint64_t rows_ = 0;
};

}  // namespace polymoe::data
