// Every scalar statistic of the routing analysis as one function of the per-language sums
// mass[a][r][e] (one estimator) and token counts N_a. The point estimate, each bootstrap replicate
// and each permutation call the same compute_metrics() on differently resampled sums, so a
// confidence interval is always the interval of exactly the reported number. Scalars live in one
// flat vector addressed through ScalarLayout; docs/analysis.md defines each of them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace polymoe::analysis {

// Expert reuse of one language: targets[0] = itself (the ceiling), targets[1] = its related
// language, targets[2..] = the unrelated high-resource languages.
struct ReuseRow {
    int lang = 0;
    std::vector<int> targets;
};

struct MetricSpec {
    int E = 0, K = 0, R = 0, nL = 0;
    std::vector<double> layer_x;  // model layer number of each recorded layer (trend x axis)
    double specific_threshold = 0.5, specific_ratio = 2.0, shared_factor = 0.5;
    int reuse_m = 0;  // top-m experts of a target language
    std::vector<ReuseRow> reuse;
    std::vector<double> overlap;  // [nPairs] symmetrised vocabulary overlap; empty = none
};

// Offsets of the scalars in the flat vector. Pairs a < b are numbered row by row.
class ScalarLayout {
public:
    explicit ScalarLayout(const MetricSpec& spec);
    int64_t size() const { return size_; }
    int num_pairs() const { return n_pairs_; }
    int pair(int a, int b) const;  // a != b, either order

    int64_t entropy(int a, int r) const { return entropy_ + int64_t{a} * R_ + r; }
    int64_t jsd(int p, int r) const { return jsd_ + int64_t{p} * R_ + r; }
    int64_t njsd(int p, int r) const { return njsd_ + int64_t{p} * R_ + r; }
    // Means over all language pairs (JSD, bits) and over languages (entropy) per layer: the
    // per-layer curves of the report, with their own bootstrap CIs and permutation null.
    int64_t mean_jsd(int r) const { return mean_jsd_ + r; }
    int64_t mean_entropy(int r) const { return mean_entropy_ + r; }
    int64_t nmi(int r) const { return nmi_ + r; }
    int64_t nmi_balanced(int r) const { return nmi_bal_ + r; }
    // Trend of NMI over layers: i = 0 slope, 1 last - first; balanced variant 2, 3.
    int64_t trend(int i) const { return trend_ + i; }
    int64_t num_specific(int r) const { return n_spec_ + r; }
    int64_t num_shared(int r) const { return n_shared_ + r; }
    int64_t reuse(int row, int target, int r) const {
        return reuse_[static_cast<size_t>(row)] + int64_t{target} * R_ + r;
    }
    int64_t reuse_margin(int row, int r) const { return margin_ + int64_t{row} * R_ + r; }
    int64_t correlation(int r) const { return corr_ + r; }
    int64_t correlation_mean() const { return corr_ + R_; }

private:
    int R_ = 0, n_pairs_ = 0, nL_ = 0;
    int64_t entropy_ = 0, jsd_ = 0, njsd_ = 0, mean_jsd_ = 0, mean_entropy_ = 0, nmi_ = 0,
            nmi_bal_ = 0, trend_ = 0, n_spec_ = 0, n_shared_ = 0, margin_ = 0, corr_ = 0, size_ = 0;
    std::vector<int64_t> reuse_;
};

struct Replicate {
    std::vector<double> s;          // [layout.size()] scalars (NaN = undefined)
    std::vector<int32_t> specific;  // [R][E] language the expert is specific to, or -1
    std::vector<uint8_t> shared;    // [R][E] 1 if shared by every language
};

// kNull computes only what permutations need: JSD (pairs and their mean), normalised JSD and NMI
// (both variants).
enum class MetricSet { kAll, kNull };

struct MetricWorkspace {
    std::vector<double> p, h, joint, x, y;
    std::vector<int32_t> top, order;
};

// mass: [nL][R][E] sums of one estimator; tokens: [nL]. Fills out (resized as needed).
void compute_metrics(Replicate* out,
                     std::span<const double> mass,
                     std::span<const double> tokens,
                     const MetricSpec& spec,
                     const ScalarLayout& layout,
                     MetricSet set,
                     MetricWorkspace* ws);

// Indices of the m largest entries of p (ties: lower index first), in that order.
void top_m(std::vector<int32_t>* out,
           std::span<const double> p,
           int m,
           std::vector<int32_t>* order_scratch);

}  // namespace polymoe::analysis
