// Closed-form and property tests of the information-theoretic primitives (divergence.h), each with
// a negative control: a deliberately wrong variant (natural log where bits are expected, an
// unnormalised input, MI without the H(L) normalisation) must fail the same check.
//
// Literal inputs are static constexpr arrays, not std::vector initializer lists: GCC 12.2 with
// -march=native (AVX-512VL) miscompiles `std::vector<double> p = {0.5, 0.5, 0, 0}` into
// {0.5, 0.5, 0.5, 0.5} (reproduced at -O2; -fno-tree-vectorize avoids it).
#include "analysis/divergence.h"

#include <gtest/gtest.h>

#include <cmath>
#include <span>
#include <vector>

namespace polymoe::analysis {
namespace {

constexpr double kTol = 1e-12;

TEST(Divergence, JsdIsSymmetricAndZeroForIdenticalInputs) {
    static constexpr double p[] = {0.1, 0.2, 0.3, 0.4, 0.0};
    static constexpr double q[] = {0.25, 0.05, 0.3, 0.0, 0.4};
    EXPECT_NEAR(jsd_bits(p, q), jsd_bits(q, p), kTol);
    EXPECT_GT(jsd_bits(p, q), 0.05);
    EXPECT_EQ(jsd_bits(p, p), 0.0);
    EXPECT_EQ(jsd_bits(q, q), 0.0);
    // Negative control: one half of the JSD alone, KL(p || m), is not symmetric.
    auto half_kl = [](std::span<const double> a, std::span<const double> b) {
        double s = 0;
        for (size_t e = 0; e < a.size(); ++e)
            if (a[e] > 0) s += a[e] * std::log2(2 * a[e] / (a[e] + b[e]));
        return s;
    };
    EXPECT_GT(std::abs(half_kl(p, q) - half_kl(q, p)), 1e-3);
}

TEST(Divergence, JsdIsOneBitForDisjointSupports) {
    static constexpr double p[] = {0.5, 0.5, 0, 0};
    static constexpr double q[] = {0, 0, 0.9, 0.1};
    EXPECT_NEAR(jsd_bits(p, q), 1.0, kTol);
    EXPECT_NEAR(jsd_nats(p, q), std::log(2.0), kTol);
    // Negative control: the same divergence in nats is not 1 "bit".
    EXPECT_GT(std::abs(jsd_nats(p, q) - 1.0), 0.3);
}

TEST(Divergence, JsdHandComputedValue) {
    // p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4), JSD = H(m) - (H(p) + H(q))/2
    //   = (-(3/4) log2(3/4) - (1/4) log2(1/4)) - 1/2 = 0.8112781244591328 - 0.5.
    static constexpr double p[] = {1, 0};
    static constexpr double q[] = {0.5, 0.5};
    const double want = 0.3112781244591328;
    EXPECT_NEAR(jsd_bits(p, q), want, kTol);
    EXPECT_NEAR(jsd_nats(p, q), want * std::log(2.0), kTol);
    // Negative controls: nats where bits are expected, and unnormalised counts as input.
    EXPECT_GT(std::abs(jsd_nats(p, q) - want), 0.05);
    static constexpr double pc[] = {2, 0};
    static constexpr double qc[] = {1, 1};
    EXPECT_GT(std::abs(jsd_bits(pc, qc) - want), 0.05);
    std::vector<double> pn(2), qn(2);
    normalize(pn, pc);
    normalize(qn, qc);
    EXPECT_NEAR(jsd_bits(pn, qn), want, kTol);
}

TEST(Divergence, JsdIsBoundedByOneBit) {
    // Random-ish vectors on 8 experts: 0 <= JSD <= 1 and JSD <= log2 E - mean H (the nJSD bound).
    for (int t = 0; t < 50; ++t) {
        std::vector<double> a(8), b(8), p(8), q(8);
        for (int e = 0; e < 8; ++e) {
            a[e] = std::fmod(0.37 * (t + 1) * (e + 3), 1.0) * (e % 3 != t % 3);
            b[e] = std::fmod(0.61 * (t + 2) * (e + 1), 1.0);
        }
        normalize(p, a);
        normalize(q, b);
        const double j = jsd_bits(p, q);
        EXPECT_GE(j, 0.0);
        EXPECT_LE(j, 1.0);
        EXPECT_LE(j, 3.0 - 0.5 * (entropy_bits(p) + entropy_bits(q)) + 1e-12);
        const double nj = normalized_jsd(j, entropy_bits(p), entropy_bits(q), 8);
        EXPECT_GE(nj, 0.0);
        EXPECT_LE(nj, 1.0);
    }
}

TEST(Divergence, EntropyOfUniformIsLog2E) {
    for (int E : {1, 2, 8, 64}) {
        std::vector<double> p(static_cast<size_t>(E), 1.0 / E);
        EXPECT_NEAR(entropy_bits(p), std::log2(E), kTol);
        // Negative control: the natural-log entropy is not log2 E (except for E = 1).
        if (E > 1) {
            EXPECT_GT(std::abs(entropy_nats(p) - std::log2(E)), 0.2);
        }
    }
    static constexpr double one[] = {0, 1, 0, 0};
    EXPECT_EQ(entropy_bits(one), 0.0);
    // Negative control: unnormalised "uniform" counts give a different (wrong) number.
    const std::vector<double> counts(8, 3.0);
    EXPECT_GT(std::abs(entropy_bits(counts) - 3.0), 1.0);
}

TEST(Divergence, NormalizedJsdClosedForms) {
    // Disjoint point masses: JSD = 1, H = 0, bound = log2 E -> nJSD = 1/log2 E.
    std::vector<double> p(4, 0.0), q(4, 0.0);
    p[0] = 1;
    q[1] = 1;
    EXPECT_NEAR(normalized_jsd(jsd_bits(p, q), 0, 0, 4), 0.5, kTol);
    // Uniform vs uniform: bound 0 -> defined as 0.
    std::vector<double> u(4, 0.25);
    EXPECT_EQ(normalized_jsd(jsd_bits(u, u), 2.0, 2.0, 4), 0.0);
}

TEST(Divergence, NmiIsZeroForIdenticalRoutingAndOneForDisjoint) {
    // 4 languages x 8 experts.
    const int L = 4, E = 8;
    std::vector<double> same(L * E), disjoint(L * E, 0.0);
    for (int l = 0; l < L; ++l)
        for (int e = 0; e < E; ++e) {
            same[l * E + e] = (l + 1) * (e + 1.0);  // rows proportional: identical routing
            if (e / 2 == l) disjoint[l * E + e] = 10.0 + l + e;
        }
    EXPECT_NEAR(nmi(same, L, E), 0.0, kTol);
    EXPECT_NEAR(nmi(disjoint, L, E), 1.0, kTol);
    // Negative control: without the division by H(L) the disjoint case gives I = H(L), about 2
    // bits for these 4 languages, not 1.
    EXPECT_GT(std::abs(mutual_information_bits(disjoint, L, E) - 1.0), 0.5);
    // One language: H(L) = 0 -> undefined.
    EXPECT_TRUE(std::isnan(nmi(std::vector<double>(E, 1.0), 1, E)));
}

TEST(Divergence, NmiBalancedEqualsGeneralisedJsdOverLogL) {
    // With rows normalised (weights 1/nL), I(L;E) = H(mean p) - mean H(p_l).
    const int L = 2, E = 3;
    static constexpr double p[] = {0.7, 0.2, 0.1};
    static constexpr double q[] = {0.1, 0.3, 0.6};
    static constexpr double joint[] = {0.7, 0.2, 0.1, 0.1, 0.3, 0.6};
    EXPECT_NEAR(nmi(joint, L, E), jsd_bits(p, q), kTol);  // log2 2 = 1
}

TEST(Divergence, PearsonSlopeQuantile) {
    static constexpr double x[] = {0, 1, 2, 3};
    static constexpr double y[] = {1, 3, 5, 7};
    static constexpr double z[] = {7, 5, 3, 1};
    static constexpr double five[] = {4, 1, 3, 2, 5};
    EXPECT_NEAR(pearson(x, y), 1.0, kTol);
    EXPECT_NEAR(pearson(x, z), -1.0, kTol);
    EXPECT_NEAR(ls_slope(x, y), 2.0, kTol);
    EXPECT_TRUE(std::isnan(pearson(x, std::vector<double>(4, 1.0))));
    std::vector<double> v(std::begin(five), std::end(five));
    EXPECT_NEAR(quantile(v, 0.5), 3.0, kTol);
    EXPECT_NEAR(quantile(v, 0.95), 4.8, kTol);  // numpy.quantile([1..5], 0.95) = 4.8
    EXPECT_NEAR(quantile(v, 0.0), 1.0, kTol);
}

}  // namespace
}  // namespace polymoe::analysis
