// Guards the build against a GCC 12 wrong-code bug (SLP vectoriser, AVX-512 targets): constant
// initialisers of mixed values were materialised as a broadcast of the first value. The build
// adds -fno-tree-slp-vectorize for GCC < 13 with -march=native (CMakeLists.txt); if that flag is
// lost, or another compiler does the same, these checks fail instead of statistics silently
// going wrong.
#include <gtest/gtest.h>

#include <vector>

namespace {

// noinline + a volatile read keep the compiler from folding the check at compile time.
__attribute__((noinline)) double sum_tail(const std::vector<double>& v) {
    volatile double s = 0;
    for (size_t i = 2; i < v.size(); ++i)
        s = s + v[i];
    return s;
}

TEST(Compiler, MixedConstantInitialisersKeepTheirValues) {
    const std::vector<double> p = {0.5, 0.5, 0, 0};
    EXPECT_EQ(p[2], 0.0);
    EXPECT_EQ(p[3], 0.0);
    EXPECT_EQ(sum_tail(p), 0.0);
    const std::vector<double> q = {0.25, 0.25, 0.25, 0};
    EXPECT_EQ(q[3], 0.0);
    const std::vector<float> f = {1.0f, 1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f};
    EXPECT_EQ(f[2] + f[3] + f[6] + f[7], 0.0f);
}

}  // namespace
