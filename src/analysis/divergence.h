// Information-theoretic primitives of the routing analysis, on plain double vectors
// (docs/analysis.md has the definitions). Everything here is a pure function; the streaming and
// resampling code calls these for point estimates, bootstrap replicates and permutations alike.
//
//   H(p)       = -sum_e p_e log2 p_e                            (bits, 0 log 0 = 0, max log2 E)
//   JSD(p, q)  = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q)/2 (bits, in [0, 1])
//   nJSD(p, q) = JSD / (log2 E - (H(p) + H(q))/2)               (0 when the denominator is 0)
//   NMI        = I(L; E) / H(L) from a joint mass table over (language, expert)
//
// JSD is computed term by term as p log(p/m) (not as H(m) - mean H), which keeps full relative
// precision for nearly equal distributions; zeros need no smoothing since m_e >= p_e/2.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace polymoe::analysis {

inline constexpr double kLn2 = 0.69314718055994530942;

// out = in / sum(in); returns sum(in). A zero total leaves out all zeros.
double normalize(std::span<double> out, std::span<const double> in);

// Shannon entropy of a probability vector, in bits (natural-log version: entropy_nats).
double entropy_bits(std::span<const double> p);
double entropy_nats(std::span<const double> p);

// Jensen-Shannon divergence of two probability vectors of the same length, in bits, clamped to
// [0, 1] against rounding. jsd_nats = jsd_bits * ln 2.
double jsd_bits(std::span<const double> p, std::span<const double> q);
inline double jsd_nats(std::span<const double> p, std::span<const double> q) {
    return jsd_bits(p, q) * kLn2;
}

// Entropy-normalised JSD from a JSD and the two entropies, all in bits, for E experts: JSD divided
// by its upper bound log2 E - (H(p) + H(q))/2 (JSD = H(m) - mean H <= log2 E - mean H). Returns 0
// when the bound is 0 (both uniform, so JSD = 0), clamped to [0, 1].
double normalized_jsd(double jsd, double h_p, double h_q, int num_experts);

// Mutual information I(L; E) in bits of a joint table of non-negative masses joint[l * E + e]
// (any scale; normalised internally), and the normalised mutual information I / H(L).
// nmi() returns NaN when H(L) = 0 (one language carries all mass).
double mutual_information_bits(std::span<const double> joint, int num_langs, int num_experts);
double nmi(std::span<const double> joint, int num_langs, int num_experts);

// Pearson correlation of x and y (NaN if fewer than 2 points or a variance is 0).
double pearson(std::span<const double> x, std::span<const double> y);

// Least-squares slope of y over x (NaN if fewer than 2 points or all x equal).
double ls_slope(std::span<const double> x, std::span<const double> y);

// The q-quantile (q in [0, 1]) with linear interpolation between order statistics, as numpy's
// default: index q * (n - 1). Sorts v in place; NaN for an empty vector.
double quantile(std::vector<double>& v, double q);

}  // namespace polymoe::analysis
