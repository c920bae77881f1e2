// Each production kernel against its scalar double reference (kernels/ref/ops.h) on awkward
// sizes (1, odd, vector width +-1, 2048 columns), with max-normalised tolerances that a wrong
// variant fails (negative controls in the same test). Inputs come from the counter RNG.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/fast_exp.h"
#include "kernels/cpu/losses.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/moe.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/router.h"
#include "kernels/ref/ops.h"

namespace polymoe::kernels {
namespace {

std::vector<float> randn(int64_t n, uint64_t seed, double scale = 1.0) {
    std::vector<float> v(static_cast<size_t>(n));
    const uint64_t key = rng_key(seed, "kernels_test");
    for (int64_t i = 0; i < n; ++i)
        v[i] = static_cast<float>(scale * rng_normal(key, i));
    return v;
}

std::vector<double> to_double(const std::vector<float>& v) {
    return {v.begin(), v.end()};
}

// max |a - b| / max(max |b|, tiny): the comparison every kernel test uses.
template <typename A, typename B>
double rel_err(const A& a, const B& b) {
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < b.size(); ++i) {
        d = std::max(d, std::abs(double(a[i]) - double(b[i])));
        m = std::max(m, std::abs(double(b[i])));
    }
    return d / m;
}

constexpr double kTol = 2e-6;  // f32 kernels vs double: a few f32 ulps of the largest value

TEST(Linear, MatchesReferenceOnAwkwardSizes) {
    for (int64_t M : {1, 7, 33})
        for (int64_t N : {1, 5, 17, 64})
            for (int64_t K : {1, 3, 16, 65})
                for (bool bias : {false, true}) {
                    auto x = randn(M * K, 1), w = randn(N * K, 2), b = randn(N, 3);
                    std::vector<float> out(M * N);
                    linear_forward(out.data(), x.data(), w.data(), bias ? b.data() : nullptr, M, N,
                                   K);
                    auto xd = to_double(x), wd = to_double(w), bd = to_double(b);
                    std::vector<double> ref(M * N), mag(M * N);
                    ref::linear(ref.data(), xd.data(), wd.data(), bias ? bd.data() : nullptr, M, N,
                                K);
                    // Error bound scale: sum of |terms| (cancellation makes |ref| alone too small).
                    for (auto* v : {&xd, &wd, &bd})
                        for (auto& e : *v)
                            e = std::abs(e);
                    ref::linear(mag.data(), xd.data(), wd.data(), bias ? bd.data() : nullptr, M, N,
                                K);
                    double err = 0, scale = 0;
                    for (int64_t i = 0; i < M * N; ++i) {
                        err = std::max(err, std::abs(out[i] - ref[i]));
                        scale = std::max(scale, mag[i]);
                    }
                    EXPECT_LT(err / scale, kTol) << M << "x" << N << "x" << K << " bias " << bias;
                }
}

TEST(Linear, StridedInputAndNegativeControl) {
    const int64_t M = 9, N = 12, K = 20, ld = 31;
    auto x = randn(M * ld, 4), w = randn(N * K, 5);
    std::vector<float> out(M * N);
    linear_forward(out.data(), x.data(), w.data(), nullptr, M, N, K, ld);
    std::vector<double> xd(M * K), wd = to_double(w), ref(M * N);
    for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k)
            xd[m * K + k] = x[m * ld + k];
    ref::linear(ref.data(), xd.data(), wd.data(), static_cast<const double*>(nullptr), M, N, K);
    EXPECT_LT(rel_err(out, ref), kTol);
    // Negative control: ignoring the stride must fail the same comparison.
    linear_forward(out.data(), x.data(), w.data(), nullptr, M, N, K);
    EXPECT_GT(rel_err(out, ref), 1e-2);
}

TEST(RmsNorm, FullWidthMatchesReferenceAndPerHeadDoesNot) {
    for (int64_t cols : {1, 7, 16, 33, 2048}) {
        const int64_t rows = 5;
        auto x = randn(rows * cols, 6, 3.0), w = randn(cols, 7);
        std::vector<float> y(rows * cols), rstd(rows);
        rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), rows, cols, 1e-5f);
        auto xd = to_double(x), wd = to_double(w);
        std::vector<double> ref(rows * cols);
        ref::rmsnorm(ref.data(), xd.data(), wd.data(), rows, cols, 1e-5);
        EXPECT_LT(rel_err(y, ref), kTol) << cols;
        // In place (y aliases x), as the q/k norms run.
        rmsnorm_forward(x.data(), nullptr, x.data(), w.data(), rows, cols, 1e-5f);
        EXPECT_EQ(rel_err(x, y), 0.0);
        if (cols == 16) {  // negative control: per-head (4 x 4) normalisation
            ref::rmsnorm(ref.data(), xd.data(), wd.data(), rows, cols, 1e-5, 4);
            EXPECT_GT(rel_err(y, ref), 1e-3);
        }
    }
}

TEST(Rope, RotateHalfMatchesReferenceAndInterleavedDoesNot) {
    for (int64_t HD : {2, 8, 64}) {
        const int64_t B = 2, S = 13, heads = 3;
        auto x = randn(B * S * heads * HD, 8);
        auto xd = to_double(x), xi = xd;
        RopeTable tab = rope_table(S, HD, 10000.0);
        rope_forward(x.data(), tab, B, S, heads, HD);
        ref::rope(xd.data(), B, S, heads, HD, 10000.0);
        EXPECT_LT(rel_err(x, xd), kTol) << HD;
        if (HD >= 8) {
            ref::rope(xi.data(), B, S, heads, HD, 10000.0, /*interleaved=*/true);
            EXPECT_GT(rel_err(x, xi), 1e-3);
        }
    }
}

TEST(Attention, CausalGqaWithPaddingMatchesReference) {
    for (int64_t S : {1, 7, 17})
        for (int64_t KVH : {4, 2, 1})
            for (bool use_mask : {false, true}) {
                const int64_t B = 2, NH = 4, HD = 8;
                auto q = randn(B * S * NH * HD, 9), k = randn(B * S * KVH * HD, 10),
                     v = randn(B * S * KVH * HD, 11);
                std::vector<int32_t> mask(B * S, 1);
                for (int64_t s = S / 2 + 1; s < S; ++s)
                    mask[S + s] = 0;  // row 1 right-padded
                const int32_t* m = use_mask ? mask.data() : nullptr;
                std::vector<float> out(B * S * NH * HD);
                attention_forward(out.data(), q.data(), k.data(), v.data(), m, B, S, NH, KVH, HD);
                auto qd = to_double(q), kd = to_double(k), vd = to_double(v);
                std::vector<double> ref(out.size());
                ref::attention(ref.data(), qd.data(), kd.data(), vd.data(), m, B, S, NH, KVH, HD);
                EXPECT_LT(rel_err(out, ref), kTol) << S << " " << KVH << " " << use_mask;
            }
}

TEST(Router, SoftmaxTopkMatchesReference) {
    for (int64_t E : {4, 8, 64})
        for (int64_t K : {1, 2, 8})
            for (bool renorm : {false, true}) {
                if (K > E) continue;
                const int64_t T = 37;
                auto z = randn(T * E, 12, 2.0);
                std::vector<float> p(T * E), w(T * K), margin(T), lse(T);
                std::vector<int32_t> idx(T * K), ridx(T * K);
                router_forward(p.data(), idx.data(), w.data(), margin.data(), lse.data(), z.data(),
                               T, E, K, renorm);
                auto zd = to_double(z);
                std::vector<double> rp(T * E), rw(T * K), rm(T), rl(T);
                ref::router(rp.data(), ridx.data(), rw.data(), rm.data(), rl.data(), zd.data(), T,
                            E, K, renorm);
                EXPECT_LT(rel_err(p, rp), kTol);
                EXPECT_LT(rel_err(margin, rm), 1e-5);
                EXPECT_LT(rel_err(lse, rl), kTol);
                EXPECT_EQ(idx, ridx) << "E " << E << " K " << K;  // random logits: no near ties
                EXPECT_LT(rel_err(w, rw), kTol);
                if (!renorm && K > 1 && K < E) {  // negative control: renormalised weights
                    ref::router(rp.data(), ridx.data(), rw.data(), rm.data(), rl.data(), zd.data(),
                                T, E, K, true);
                    EXPECT_GT(rel_err(w, rw), 1e-2);
                }
            }
}

TEST(Moe, DroplessSwigluMatchesReference) {
    for (int64_t T : {1, 9, 40}) {
        const int64_t H = 16, I = 8, E = 8, K = 2;
        auto x = randn(T * H, 13), wg = randn(E * I * H, 14, 0.3), wu = randn(E * I * H, 15, 0.3),
             wd = randn(E * H * I, 16, 0.3), z = randn(T * E, 17);
        std::vector<float> p(T * E), w(T * K), out(T * H);
        std::vector<int32_t> idx(T * K);
        router_forward(p.data(), idx.data(), w.data(), nullptr, nullptr, z.data(), T, E, K, false);
        MoeWorkspace ws;
        moe_forward(out.data(), ws, x.data(), idx.data(), w.data(), wg.data(), wu.data(), wd.data(),
                    T, H, I, E, K);
        auto xd = to_double(x), wdd = to_double(w);
        std::vector<double> ref(T * H);
        ref::moe(ref.data(), xd.data(), idx.data(), wdd.data(), wg.data(), wu.data(), wd.data(), T,
                 H, I, K);
        EXPECT_LT(rel_err(out, ref), kTol) << T;
        int64_t rows = 0;
        for (int64_t e = 0; e < E; ++e)
            rows += ws.count[e];
        EXPECT_EQ(rows, T * K);
    }
}

TEST(FastExp, RelativeErrorBelow3e7AndClampsUnderflow) {
    double worst = 0.0;
    for (int i = 0; i <= 2000000; ++i) {
        const float x = -87.0f * static_cast<float>(i) / 2000000.0f;
        const double want = std::exp(static_cast<double>(x));
        worst = std::max(worst, std::abs(exp_nonpositive(x) - want) / want);
    }
    EXPECT_LT(worst, 3e-7);
    EXPECT_EQ(exp_nonpositive(0.0f), 1.0f);
    EXPECT_GT(exp_nonpositive(-1000.0f), 0.0f);  // clamped to e^-87, never denormal or NaN
    EXPECT_LT(exp_nonpositive(-1000.0f), 2e-38f);
    // Negative control: a degree-3 polynomial is visibly worse than the bound.
    auto exp3 = [](float x) {
        const float n = std::nearbyint(x * 1.44269504f), r = x - n * 0.69314718f;
        return std::ldexp(1.0f + r + r * r / 2 + r * r * r / 6, static_cast<int>(n));
    };
    double worst3 = 0.0;
    for (int i = 0; i <= 20000; ++i) {
        const float x = -20.0f * static_cast<float>(i) / 20000.0f;
        worst3 = std::max(worst3, std::abs(exp3(x) - std::exp(double(x))) / std::exp(double(x)));
    }
    EXPECT_GT(worst3, 3e-7);
}

TEST(Losses, CrossEntropyAndRouterLossesMatchDefinitions) {
    const int64_t T = 11, V = 50, E = 4, K = 2, L = 2;
    auto logits = randn(T * V, 18, 3.0);
    std::vector<int32_t> targets(T);
    for (int64_t t = 0; t < T; ++t)
        targets[t] = t % 3 == 2 ? -100 : static_cast<int32_t>((t * 7) % V);
    std::vector<double> rows(T);
    int64_t n = 0;
    const double ce = cross_entropy_forward(rows.data(), logits.data(), targets.data(), T, V, &n);
    auto ld = to_double(logits);
    // The float exp (fast_exp.h, relative error < 3e-7 per term) bounds the error of log(sum):
    // 1e-7 relative is ~100x tighter than any ce tolerance downstream, and a wrong target
    // (negative control) misses by far more.
    const double want = ref::cross_entropy(ld.data(), targets.data(), T, V);
    EXPECT_NEAR(ce, want, 1e-7 * want);
    std::vector<int32_t> shifted = targets;
    for (auto& t : shifted)
        if (t >= 0) t = (t + 1) % static_cast<int32_t>(V);
    EXPECT_GT(std::abs(ref::cross_entropy(ld.data(), shifted.data(), T, V) - ce), 1e-3);
    EXPECT_EQ(n, 8);
    // Perfectly balanced routing with uniform probabilities: aux = K, megablocks_lb = coef.
    std::vector<float> probs(T * E, 0.25f), lse(T, 0.5f);
    std::vector<int32_t> idx(T * K);
    const int64_t Tb = 8;  // 8 rows x 2 slots over 4 experts: each expert gets 4 slots per layer
    for (int64_t t = 0; t < Tb; ++t) {
        idx[t * K] = static_cast<int32_t>(t % 4);
        idx[t * K + 1] = static_cast<int32_t>((t + 2) % 4);
    }
    RouterLossAccumulator acc(L, E, K);
    for (int l = 0; l < L; ++l)
        acc.add_layer(l, probs.data(), idx.data(), lse.data(), nullptr, Tb);
    RouterLosses r = acc.finalize(0.01);
    EXPECT_NEAR(r.aux, double(K), 1e-12);
    EXPECT_NEAR(r.megablocks_lb, 0.01, 1e-12);
    EXPECT_NEAR(r.z, 0.25, 1e-12);
    EXPECT_NEAR(r.megablocks_z, 0.001 * 0.25 / K, 1e-12);
}

// Gradient of L = sum(dy * f(x)) with respect to x by central differences in double.
template <typename F>
std::vector<double> numeric_grad(F f, std::vector<double> x, const std::vector<double>& dy) {
    std::vector<double> g(x.size());
    const double h = 1e-6;
    for (size_t i = 0; i < x.size(); ++i) {
        const double x0 = x[i];
        x[i] = x0 + h;
        auto yp = f(x);
        x[i] = x0 - h;
        auto ym = f(x);
        x[i] = x0;
        double s = 0;
        for (size_t j = 0; j < dy.size(); ++j)
            s += dy[j] * (yp[j] - ym[j]);
        g[i] = s / (2 * h);
    }
    return g;
}

constexpr double kTolGrad = 1e-5;  // f32 kernel vs double central differences

TEST(LinearBackward, MatchesFiniteDifferencesAndAccumulates) {
    const int64_t M = 5, N = 7, K = 9;
    auto x = randn(M * K, 30), w = randn(N * K, 31), b = randn(N, 32), dy = randn(M * N, 33);
    std::vector<float> dx(M * K, 7.0f), dw(N * K, 0.0f), db(N, 0.0f);
    linear_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), M, N, K);
    auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
    auto fwd = [&](const std::vector<double>& xx, const std::vector<double>& ww,
                   const std::vector<double>& bb) {
        std::vector<double> y(M * N);
        ref::linear(y.data(), xx.data(), ww.data(), bb.data(), M, N, K);
        return y;
    };
    EXPECT_LT(rel_err(dx, numeric_grad([&](auto& v) { return fwd(v, wd, bd); }, xd, dyd)),
              kTolGrad);
    auto gw = numeric_grad([&](auto& v) { return fwd(xd, v, bd); }, wd, dyd);
    EXPECT_LT(rel_err(dw, gw), kTolGrad);
    EXPECT_LT(rel_err(db, numeric_grad([&](auto& v) { return fwd(xd, wd, v); }, bd, dyd)),
              kTolGrad);
    // Parameter gradients accumulate: a second call doubles them (negative control: the first
    // call's dw alone no longer matches).
    linear_backward(nullptr, dw.data(), nullptr, dy.data(), x.data(), w.data(), M, N, K);
    EXPECT_GT(rel_err(dw, gw), 0.5);
    for (auto& g : gw)
        g *= 2;
    EXPECT_LT(rel_err(dw, gw), kTolGrad);
}

// bf16 compute: din = bf16(dout) · W_bf16 and dw += bf16(dout)^T · bf16(in), f32 accumulation.
// The reference is the double product of the same bf16-rounded operands, so the only error left
// is f32 accumulation (tolerance kTol). Negative control: a reference that does not round dout
// differs by bf16's 2^-9 relative rounding and fails the same tolerance.
TEST(LinearBackward, Bf16WeightsMatchRoundedDoubleReference) {
    for (auto [M, N, K] : {std::array<int64_t, 3>{1, 5, 3}, {33, 17, 65}, {130, 64, 48}}) {
        auto x = randn(M * K, 40), w = randn(N * K, 41), dy = randn(M * N, 42);
        std::vector<bf16_t> wb(w.size());
        convert_from_f32(wb.data(), DType::BF16, w.data(), N * K);
        auto round = [](const std::vector<float>& v) {
            std::vector<double> r(v.size());
            for (size_t i = 0; i < v.size(); ++i)
                r[i] = bf16_to_f32(f32_to_bf16(v[i]));
            return r;
        };
        auto xr = round(x), wr = round(w), dyr = round(dy);
        std::vector<float> dx(M * K), dw(N * K, 0.0f);
        linear_backward(dx.data(), dw.data(), nullptr, dy.data(), x.data(), Weight(wb.data()), M, N,
                        K);
        // Double references: dx = dy · w, dw = dy^T · x.
        auto dx_ref = [&](const std::vector<double>& d) {
            std::vector<double> r(M * K, 0.0);
            for (int64_t m = 0; m < M; ++m)
                for (int64_t n = 0; n < N; ++n)
                    for (int64_t k = 0; k < K; ++k)
                        r[m * K + k] += d[m * N + n] * wr[n * K + k];
            return r;
        };
        std::vector<double> dw_ref(N * K, 0.0);
        for (int64_t n = 0; n < N; ++n)
            for (int64_t m = 0; m < M; ++m)
                for (int64_t k = 0; k < K; ++k)
                    dw_ref[n * K + k] += dyr[m * N + n] * xr[m * K + k];
        EXPECT_LT(rel_err(dx, dx_ref(dyr)), kTol) << M << "x" << N << "x" << K;
        EXPECT_LT(rel_err(dw, dw_ref), kTol) << M << "x" << N << "x" << K;
        EXPECT_GT(rel_err(dx, dx_ref(to_double(dy))), 1e-4) << "negative control";
        // The f32 path on the same (unrounded) operands is not the bf16 result either.
        std::vector<float> dw32(N * K, 0.0f);
        linear_backward(nullptr, dw32.data(), nullptr, dy.data(), x.data(), w.data(), M, N, K);
        EXPECT_GT(rel_err(dw32, dw_ref), 1e-4) << "negative control";
    }
}

TEST(RmsNormBackward, MatchesFiniteDifferences) {
    for (int64_t cols : {1, 7, 33}) {
        const int64_t rows = 3;
        auto x = randn(rows * cols, 34, 2.0), w = randn(cols, 35), dy = randn(rows * cols, 36);
        std::vector<float> y(rows * cols), rstd(rows), dx(rows * cols), dw(cols, 0.0f);
        rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), rows, cols, 1e-5f);
        rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), rows,
                         cols);
        auto xd = to_double(x), wd = to_double(w), dyd = to_double(dy);
        auto fwd = [&](const std::vector<double>& xx, const std::vector<double>& ww) {
            std::vector<double> out(rows * cols);
            ref::rmsnorm(out.data(), xx.data(), ww.data(), rows, cols, 1e-5);
            return out;
        };
        auto gx = numeric_grad([&](auto& v) { return fwd(v, wd); }, xd, dyd);
        // dx = rstd * (w*dy - xh * mean(w*dy*xh)) cancels (for cols = 1 almost entirely), so its
        // error bound scales with the size of the terms, max |rstd * w * dy|.
        std::vector<double> naive(rows * cols);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c)
                naive[r * cols + c] = double(rstd[r]) * wd[c] * dyd[r * cols + c];
        double err = 0, scale = 0;
        for (size_t i = 0; i < gx.size(); ++i) {
            err = std::max(err, std::abs(dx[i] - gx[i]));
            scale = std::max(scale, std::abs(naive[i]));
        }
        EXPECT_LT(err / scale, kTolGrad) << cols;
        EXPECT_LT(rel_err(dw, numeric_grad([&](auto& v) { return fwd(xd, v); }, wd, dyd)), kTolGrad)
            << cols;
        if (cols > 1) {  // negative control: dropping the mean term must fail
            EXPECT_GT(rel_err(naive, gx), 1e-3) << cols;
        }
    }
}

TEST(RopeBackward, IsTheTransposeOfForward) {
    const int64_t B = 2, S = 5, heads = 3, HD = 8;
    auto dy = randn(B * S * heads * HD, 37);
    auto x = to_double(randn(B * S * heads * HD, 38));
    std::vector<float> dx = dy;
    RopeTable tab = rope_table(S, HD, 10000.0);
    rope_backward(dx.data(), tab, B, S, heads, HD);
    auto g = numeric_grad(
        [&](const std::vector<double>& v) {
            auto y = v;
            ref::rope(y.data(), B, S, heads, HD, 10000.0);
            return y;
        },
        x, to_double(dy));
    EXPECT_LT(rel_err(dx, g), kTolGrad);
}

TEST(AttentionBackward, MatchesFiniteDifferencesWithGqaAndPadding) {
    const int64_t B = 2, S = 5, NH = 4, KVH = 2, HD = 4;
    auto q = randn(B * S * NH * HD, 39), k = randn(B * S * KVH * HD, 40),
         v = randn(B * S * KVH * HD, 41), dout = randn(B * S * NH * HD, 42);
    std::vector<int32_t> mask(B * S, 1);
    mask[S + 3] = mask[S + 4] = 0;  // row 1 right-padded
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(),
                       mask.data(), B, S, NH, KVH, HD);
    auto qd = to_double(q), kd = to_double(k), vd = to_double(v), dod = to_double(dout);
    auto fwd = [&](const std::vector<double>& qq, const std::vector<double>& kk,
                   const std::vector<double>& vv) {
        std::vector<double> o(B * S * NH * HD);
        ref::attention(o.data(), qq.data(), kk.data(), vv.data(), mask.data(), B, S, NH, KVH, HD);
        return o;
    };
    EXPECT_LT(rel_err(dq, numeric_grad([&](auto& x) { return fwd(x, kd, vd); }, qd, dod)),
              kTolGrad);
    EXPECT_LT(rel_err(dk, numeric_grad([&](auto& x) { return fwd(qd, x, vd); }, kd, dod)),
              kTolGrad);
    EXPECT_LT(rel_err(dv, numeric_grad([&](auto& x) { return fwd(qd, kd, x); }, vd, dod)),
              kTolGrad);
    // Negative control: ignoring the mask in backward changes dk of the padded keys.
    std::vector<float> dk2(k.size()), dq2(q.size()), dv2(v.size());
    attention_backward(dq2.data(), dk2.data(), dv2.data(), dout.data(), q.data(), k.data(),
                       v.data(), nullptr, B, S, NH, KVH, HD);
    EXPECT_GT(rel_err(dk2, dk), 1e-3);
}

// Sequences longer than one query block (attention.cpp works in blocks of 128 rows), with a
// left-padded row (its first queries see no key) and a right-padded one, against the double
// references of forward and backward.
TEST(AttentionBlocks, LongSequencesMatchDoubleReferenceForwardAndBackward) {
    const int64_t B = 3, NH = 4, KVH = 2, HD = 16;
    for (int64_t S : {128, 129, 300}) {
        auto q = randn(B * S * NH * HD, 49), k = randn(B * S * KVH * HD, 50),
             v = randn(B * S * KVH * HD, 51), dout = randn(B * S * NH * HD, 52);
        std::vector<int32_t> mask(B * S, 1);
        for (int64_t s = 0; s < 140 && s < S; ++s)
            mask[S + s] = 0;  // row 1 left-padded past the first block
        for (int64_t s = S - 40; s < S; ++s)
            mask[2 * S + s] = 0;  // row 2 right-padded
        std::vector<float> out(q.size()), dq(q.size()), dk(k.size()), dv(v.size());
        attention_forward(out.data(), q.data(), k.data(), v.data(), mask.data(), B, S, NH, KVH, HD);
        attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(),
                           v.data(), mask.data(), B, S, NH, KVH, HD);
        auto qd = to_double(q), kd = to_double(k), vd = to_double(v), dod = to_double(dout);
        std::vector<double> ro(q.size()), rdq(q.size()), rdk(k.size()), rdv(v.size());
        ref::attention(ro.data(), qd.data(), kd.data(), vd.data(), mask.data(), B, S, NH, KVH, HD);
        ref::attention_backward(rdq.data(), rdk.data(), rdv.data(), dod.data(), qd.data(),
                                kd.data(), vd.data(), mask.data(), B, S, NH, KVH, HD);
        EXPECT_LT(rel_err(out, ro), kTol) << S;
        EXPECT_LT(rel_err(dq, rdq), kTol) << S;
        EXPECT_LT(rel_err(dk, rdk), kTol) << S;
        EXPECT_LT(rel_err(dv, rdv), kTol) << S;
        // Negative control: the reference without the padding mask is far from our gradients.
        ref::attention_backward(rdq.data(), rdk.data(), rdv.data(), dod.data(), qd.data(),
                                kd.data(), vd.data(), nullptr, B, S, NH, KVH, HD);
        EXPECT_GT(rel_err(dk, rdk), 1e-3) << S;
    }
}

TEST(CrossEntropyBackward, MatchesFiniteDifferencesOfTheMean) {
    const int64_t T = 6, V = 11;
    auto z = randn(T * V, 43, 2.0);
    std::vector<int32_t> tg = {3, -100, 0, 10, 5, -100};
    std::vector<float> dz(T * V);
    cross_entropy_backward(dz.data(), z.data(), tg.data(), T, V, 1.0 / 4.0);
    auto g = numeric_grad(
        [&](const std::vector<double>& x) {
            return std::vector<double>{ref::cross_entropy(x.data(), tg.data(), T, V)};
        },
        to_double(z), {1.0});
    EXPECT_LT(rel_err(dz, g), kTolGrad);
}

// The training head's fused kernel must reproduce the two separate kernels bit for bit (losses,
// mean, count and gradient), on a vocabulary long enough for the vectorised exp-sum tail.
TEST(CrossEntropyFused, EqualsForwardAndBackwardBitForBit) {
    const int64_t T = 9, V = 1037;
    auto z = randn(T * V, 48, 3.0);
    std::vector<int32_t> tg(T);
    for (int64_t t = 0; t < T; ++t)
        tg[t] = t % 4 == 1 ? -100 : static_cast<int32_t>((t * 131) % V);
    const double scale = 1.0 / 7.0;
    std::vector<double> want_rows(T), rows(T);
    std::vector<float> want_dz(T * V);
    int64_t want_n = 0, n = 0;
    const double want = cross_entropy_forward(want_rows.data(), z.data(), tg.data(), T, V, &want_n);
    cross_entropy_backward(want_dz.data(), z.data(), tg.data(), T, V, scale);
    std::vector<float> dz = z;
    const double got = cross_entropy_fused(rows.data(), dz.data(), tg.data(), T, V, scale, &n);
    EXPECT_EQ(got, want);
    EXPECT_EQ(n, want_n);
    EXPECT_EQ(rows, want_rows);
    EXPECT_EQ(dz, want_dz);
    // Negative control: another scale must change the gradient (and only the gradient).
    std::vector<float> dz2 = z;
    EXPECT_EQ(cross_entropy_fused(rows.data(), dz2.data(), tg.data(), T, V, 2 * scale, &n), want);
    EXPECT_NE(dz2, want_dz);
}

TEST(RouterBackward, MatchesFiniteDifferencesWithFrozenRouting) {
    for (bool renorm : {false, true}) {
        const int64_t T = 7, E = 8, K = 3;
        auto z = randn(T * E, 44, 2.0), dw = randn(T * K, 45), dpr = randn(T * E, 46),
             dl = randn(T, 47);
        std::vector<float> p(T * E), w(T * K), lse(T), dz(T * E);
        std::vector<int32_t> idx(T * K);
        router_forward(p.data(), idx.data(), w.data(), nullptr, lse.data(), z.data(), T, E, K,
                       renorm);
        router_backward(dz.data(), dw.data(), dpr.data(), dl.data(), p.data(), idx.data(), T, E, K,
                        renorm);
        std::vector<double> dy = to_double(dw);
        for (float v : dpr)
            dy.push_back(v);
        for (float v : dl)
            dy.push_back(v);
        auto g = numeric_grad(
            [&](const std::vector<double>& x) {
                std::vector<double> pp(T * E), ww(T * K), ll(T);
                std::vector<int32_t> ii(T * K);
                ref::router(pp.data(), ii.data(), ww.data(), static_cast<double*>(nullptr),
                            ll.data(), x.data(), T, E, K, renorm);
                EXPECT_EQ(ii, idx);  // h = 1e-6 never flips these random rows
                ww.insert(ww.end(), pp.begin(), pp.end());
                ww.insert(ww.end(), ll.begin(), ll.end());
                return ww;
            },
            to_double(z), dy);
        EXPECT_LT(rel_err(dz, g), kTolGrad) << renorm;
    }
}

TEST(EmbeddingBackward, AccumulatesRowsAndSkipsPad) {
    const int64_t T = 5, H = 3, V = 4;
    std::vector<int32_t> ids = {2, 1, 2, 0, 1};
    auto d = randn(T * H, 48);
    std::vector<float> table(V * H, 1.0f);
    embedding_backward(table.data(), d.data(), ids.data(), T, H, /*pad_id=*/1);
    for (int64_t c = 0; c < H; ++c) {
        EXPECT_FLOAT_EQ(table[2 * H + c], 1.0f + d[0 * H + c] + d[2 * H + c]);
        EXPECT_FLOAT_EQ(table[0 * H + c], 1.0f + d[3 * H + c]);
        EXPECT_EQ(table[1 * H + c], 1.0f);  // pad row: no gradient
        EXPECT_EQ(table[3 * H + c], 1.0f);  // unused row
    }
}

TEST(MoeBackward, MatchesFiniteDifferencesWithFrozenRouting) {
    const int64_t T = 6, H = 8, I = 4, E = 4, K = 2;
    auto x = randn(T * H, 49), wg = randn(E * I * H, 50, 0.5), wu = randn(E * I * H, 51, 0.5),
         wd = randn(E * H * I, 52, 0.5), z = randn(T * E, 53), dout = randn(T * H, 54);
    std::vector<float> p(T * E), w(T * K), out(T * H);
    std::vector<int32_t> idx(T * K);
    router_forward(p.data(), idx.data(), w.data(), nullptr, nullptr, z.data(), T, E, K, false);
    MoeWorkspace ws;
    moe_forward(out.data(), ws, x.data(), idx.data(), w.data(), wg.data(), wu.data(), wd.data(), T,
                H, I, E, K);
    // Weight gradients are assigned, not accumulated: NaN-filled buffers must come out finite.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> dx(T * H), dw(T * K), dwg(wg.size(), nan), dwu(wu.size(), nan),
        dwd(wd.size(), nan);
    moe_backward(dx.data(), dw.data(), dwg.data(), dwu.data(), dwd.data(), ws, dout.data(),
                 w.data(), wg.data(), wu.data(), wd.data(), T, H, I, E, K);
    auto X = to_double(x), W = to_double(w), G = to_double(wg), U = to_double(wu),
         D = to_double(wd), dy = to_double(dout);
    auto fwd = [&](const std::vector<double>& xx, const std::vector<double>& ww,
                   const std::vector<double>& gg, const std::vector<double>& uu,
                   const std::vector<double>& dd) {
        std::vector<double> o(T * H);
        ref::moe(o.data(), xx.data(), idx.data(), ww.data(), gg.data(), uu.data(), dd.data(), T, H,
                 I, K);
        return o;
    };
    EXPECT_LT(rel_err(dx, numeric_grad([&](auto& v) { return fwd(v, W, G, U, D); }, X, dy)),
              kTolGrad);
    EXPECT_LT(rel_err(dw, numeric_grad([&](auto& v) { return fwd(X, v, G, U, D); }, W, dy)),
              kTolGrad);
    EXPECT_LT(rel_err(dwg, numeric_grad([&](auto& v) { return fwd(X, W, v, U, D); }, G, dy)),
              kTolGrad);
    EXPECT_LT(rel_err(dwu, numeric_grad([&](auto& v) { return fwd(X, W, G, v, D); }, U, dy)),
              kTolGrad);
    EXPECT_LT(rel_err(dwd, numeric_grad([&](auto& v) { return fwd(X, W, G, U, v); }, D, dy)),
              kTolGrad);
}

// Frozen experts (--trainable): per-expert gradient pointers with some null, with or without dx,
// give exactly the values of the full stacked backward for what they do compute, and never touch
// the frozen experts' gradients.
TEST(MoeBackward, FrozenExpertsMatchTheFullBackwardBitForBit) {
    const int64_t T = 9, H = 8, I = 4, E = 4, K = 2;
    auto x = randn(T * H, 61), wg = randn(E * I * H, 62, 0.5), wu = randn(E * I * H, 63, 0.5),
         wd = randn(E * H * I, 64, 0.5), z = randn(T * E, 65), dout = randn(T * H, 66);
    std::vector<float> p(T * E), w(T * K), out(T * H);
    std::vector<int32_t> idx(T * K);
    router_forward(p.data(), idx.data(), w.data(), nullptr, nullptr, z.data(), T, E, K, false);
    MoeWorkspace ws;
    moe_forward(out.data(), ws, x.data(), idx.data(), w.data(), wg.data(), wu.data(), wd.data(), T,
                H, I, E, K);
    std::vector<float> dx(T * H), dw(T * K), dwg(wg.size(), 0.0f), dwu(wu.size(), 0.0f),
        dwd(wd.size(), 0.0f);
    moe_backward(dx.data(), dw.data(), dwg.data(), dwu.data(), dwd.data(), ws, dout.data(),
                 w.data(), wg.data(), wu.data(), wd.data(), T, H, I, E, K);
    for (bool with_dx : {true, false}) {
        // Expert 1: only gate trainable; expert 2: only down; experts 0 and 3 frozen.
        std::vector<float> gg(I * H, 0.0f), gd(H * I, 0.0f), dx2(T * H, 7.0f), dw2(T * K);
        std::vector<float*> pg(E, nullptr), pu(E, nullptr), pd(E, nullptr);
        pg[1] = gg.data();
        pd[2] = gd.data();
        moe_backward(with_dx ? dx2.data() : nullptr, dw2.data(), pg.data(), pu.data(), pd.data(),
                     ws, dout.data(), w.data(), wg.data(), wu.data(), wd.data(), T, H, I, E, K);
        EXPECT_EQ(0, std::memcmp(dw2.data(), dw.data(), dw.size() * 4));
        EXPECT_EQ(0, std::memcmp(gg.data(), dwg.data() + 1 * I * H, gg.size() * 4));
        EXPECT_EQ(0, std::memcmp(gd.data(), dwd.data() + 2 * H * I, gd.size() * 4));
        if (with_dx) {
            EXPECT_EQ(0, std::memcmp(dx2.data(), dx.data(), dx.size() * 4));
        } else {
            EXPECT_EQ(dx2[0], 7.0f);  // untouched
        }
    }
}

TEST(Determinism, SameThreadCountIsBitIdentical) {
    const int64_t T = 64, H = 32, I = 16, E = 8, K = 2;
    auto x = randn(T * H, 19), wg = randn(E * I * H, 20, 0.3), wu = randn(E * I * H, 21, 0.3),
         wd = randn(E * H * I, 22, 0.3), z = randn(T * E, 23);
    auto run = [&](int threads) {
        set_num_threads(threads);
        std::vector<float> p(T * E), w(T * K), out(T * H);
        std::vector<int32_t> idx(T * K);
        router_forward(p.data(), idx.data(), w.data(), nullptr, nullptr, z.data(), T, E, K, false);
        MoeWorkspace ws;
        moe_forward(out.data(), ws, x.data(), idx.data(), w.data(), wg.data(), wu.data(), wd.data(),
                    T, H, I, E, K);
        return out;
    };
    auto a = run(2), b = run(2), c = run(1);
    EXPECT_EQ(a, b);
    EXPECT_LT(rel_err(c, a), 1e-6);
    set_num_threads(0);
}

}  // namespace
}  // namespace polymoe::kernels
