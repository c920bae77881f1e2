// TreeAccumulator: the sum along the tree of Comm::tree_sum, so that splitting micro-batches
// between ranks (a power of two per rank) does not change a bit of the gradient. The values
// are chosen so that float addition is visibly non-associative, so a different grouping fails.
#include <gtest/gtest.h>

#include <vector>

#include "dist/comm.h"

namespace polymoe::dist {
namespace {

// Four vectors whose sum depends on the grouping: (a+b)+(c+d) differs from ((a+b)+c)+d.
const std::vector<std::vector<float>> kV = {
    {1e8f, 1.0f, 3.0f}, {1.0f, 1e8f, -1e-3f}, {-1e8f, 1.0f, 7.5f}, {1.0f, -1e8f, 1e-7f}};

std::vector<float> tree(const std::vector<std::vector<float>>& v) {
    TreeAccumulator acc(v[0].size());
    for (const auto& x : v)
        acc.push(x.data());
    std::vector<float> out(v[0].size());
    acc.take(out.data());
    return out;
}

TEST(TreeAccumulator, GroupsPairwiseLikeTheRankTree) {
    const std::vector<float> got = tree(kV);
    for (size_t i = 0; i < 3; ++i) {
        const float pair = (kV[0][i] + kV[1][i]) + (kV[2][i] + kV[3][i]);
        EXPECT_EQ(got[i], pair) << i;
    }
    // Negative control: the left-to-right sum differs in some element for these values.
    bool differs = false;
    for (size_t i = 0; i < 3; ++i)
        differs |= got[i] != ((kV[0][i] + kV[1][i]) + kV[2][i]) + kV[3][i];
    EXPECT_TRUE(differs);
}

TEST(TreeAccumulator, TwoRanksOfTwoEqualOneRankOfFour) {
    // Rank r's local tree over its 2 micro-batches, then the rank tree over 2 ranks.
    const std::vector<float> r0 = tree({kV[0], kV[1]}), r1 = tree({kV[2], kV[3]});
    std::vector<float> two = r0;
    for (size_t i = 0; i < 3; ++i)
        two[i] += r1[i];
    EXPECT_EQ(two, tree(kV));
}

TEST(TreeAccumulator, OddCountsAndReuse) {
    TreeAccumulator acc(3);
    for (int k = 0; k < 3; ++k)
        acc.push(kV[static_cast<size_t>(k)].data());
    std::vector<float> out(3);
    acc.take(out.data());
    for (size_t i = 0; i < 3; ++i)
        EXPECT_EQ(out[i], (kV[0][i] + kV[1][i]) + kV[2][i]);
    acc.take(out.data());  // empty after take
    EXPECT_EQ(out, std::vector<float>(3, 0.0f));
    acc.push(kV[3].data());
    acc.take(out.data());
    EXPECT_EQ(out, kV[3]);
}

TEST(Comm, SingleProcessIsOneRank) {
    Comm& c = Comm::init();  // not launched by mpirun under CTest
    EXPECT_EQ(c.size(), 1);
    EXPECT_EQ(c.rank(), 0);
    std::vector<float> x = {1.5f, -2.0f};
    c.tree_sum(x.data(), x.size());
    EXPECT_EQ(x, (std::vector<float>{1.5f, -2.0f}));
    EXPECT_EQ(c.allgather(std::vector<double>{3.0, 4.0}), (std::vector<double>{3.0, 4.0}));
    EXPECT_EQ(c.allgather(std::string("s")), std::vector<std::string>{"s"});
}

}  // namespace
}  // namespace polymoe::dist
