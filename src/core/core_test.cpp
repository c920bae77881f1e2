// Tests of core helpers: bf16 rounding (ties to even, NaN, overflow), f16 decoding, the
// counter-based RNG (fixed values that tools/polymoe_rng.py must reproduce), parallel_for splits,
// the per-region profile's accounting.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "core/rng.h"

namespace polymoe {
namespace {

TEST(Dtype, Bf16RoundsToNearestEven) {
    // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to even (1).
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 0x1p-8f)), 1.0f);
    // 1 + 3*2^-8 is between 1 + 2^-7 (odd mantissa) and 1 + 2^-6: ties go to 1 + 2^-6.
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
    // Slightly above the tie rounds up.
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    EXPECT_TRUE(std::isinf(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::max()))));
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
}

TEST(Dtype, F16Decodes) {
    EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
    EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
    EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);  // smallest subnormal
    EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
    EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
}

TEST(Rng, StreamIsStableAndNormal) {
    uint64_t key = rng_key(1234, "model.embed_tokens.weight");
    EXPECT_EQ(rng_normal(key, 17), rng_normal(key, 17));
    EXPECT_NE(rng_normal(key, 17), rng_normal(rng_key(1235, "model.embed_tokens.weight"), 17));
    double s = 0, s2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
        double z = rng_normal(key, i);
        s += z;
        s2 += z * z;
    }
    EXPECT_NEAR(s / n, 0.0, 0.01);
    EXPECT_NEAR(s2 / n, 1.0, 0.01);
}

TEST(Parallel, SplitCoversRangeOnce) {
    set_num_threads(2);
    std::vector<int> hits(1001, 0);
    parallel_for(1001, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i)
            hits[i]++;
    });
    for (int h : hits)
        EXPECT_EQ(h, 1);
    set_num_threads(0);
}

// A region's time lands in the phase current when it ends, phases restore on exit, and nothing is
// recorded while profiling is off.
TEST(Profile, RegionsArePerPhaseAndOffByDefault) {
    EXPECT_FALSE(prof::enabled());
    prof::reset();
    { prof::Scope s(prof::Region::Experts); }
    EXPECT_TRUE(prof::snapshot().empty());
    prof::set_enabled(true);
    {
        prof::Scope s(prof::Region::Experts);
        const double t0 = prof::now_seconds();
        while (prof::now_seconds() - t0 < 2e-3) {
        }
    }
    {
        prof::PhaseScope bwd(prof::Phase::Backward);
        {
            prof::PhaseScope rec(prof::Phase::Recompute);
            prof::Scope s(prof::Region::Norm);
        }
        prof::Scope a(prof::Region::Experts);
    }
    { prof::Scope s(prof::Region::Experts); }
    prof::set_enabled(false);
    const std::vector<prof::Entry> got = prof::snapshot();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].name, "fwd.experts");
    EXPECT_EQ(got[0].calls, 2);
    EXPECT_GE(got[0].seconds, 2e-3);
    EXPECT_EQ(got[1].name, "bwd.experts");
    EXPECT_EQ(got[1].calls, 1);
    EXPECT_EQ(got[2].name, "recompute.norm");
    prof::reset();
    EXPECT_TRUE(prof::snapshot().empty());
}

}  // namespace
}  // namespace polymoe
