// AdamW, clipping and schedules (see optimizer.h).
#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/error.h"
#include "core/parallel.h"

namespace polymoe::train {

namespace {

struct UpdateCoefs {
    float shrink, b1, b2, step_size, sqrt_bc2, eps, grad_scale;
};

// The AdamW update of `len` consecutive elements (decay: the weight-decay mask, or null for all).
// It is memory-bound (29 bytes per element, ~1 B elements at OLMoE's real dimensions with 2
// layers), so it must vectorise; checked with -fopt-info-vec. What that needs: a function of its
// own taking the coefficients by value (inside the parallel_for lambda, with captures, GCC
// left the loop scalar), the decay test as a multiplier (p * 1 == p exactly), and
// -fno-math-errno for this file (src/train/CMakeLists.txt): otherwise sqrt keeps a branch to the
// libm call that sets errno, and "control flow in loop" stops the vectoriser. The file is also
// built with -ffp-contract=off: every element then gets exactly the operations written, each
// rounded once, whether it falls in the vector body or a tail (no FMA fused on one path and not
// the other), so the result does not depend on where thread chunks and segments start.
void update_range(float* __restrict p,
                  const float* __restrict g,
                  float* __restrict m,
                  float* __restrict v,
                  const uint8_t* __restrict decay,
                  int64_t len,
                  const UpdateCoefs k) {
    const float shrink = k.shrink, b1 = k.b1, b2 = k.b2, step_size = k.step_size,
                sqrt_bc2 = k.sqrt_bc2, eps = k.eps, gs = k.grad_scale;
    if (decay) {
        for (int64_t i = 0; i < len; ++i) {
            const float pi = p[i] * (decay[i] ? shrink : 1.0f);
            const float gi = g[i] * gs;
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            p[i] = pi - step_size * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
        }
    } else {
        for (int64_t i = 0; i < len; ++i) {
            const float pi = p[i] * shrink;
            const float gi = g[i] * gs;
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            p[i] = pi - step_size * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
        }
    }
}

}  // namespace

void AdamW::step(std::vector<float>& params,
                 const std::vector<float>& grads,
                 double lr,
                 const std::vector<uint8_t>& decay,
                 const std::vector<Segment>& segments,
                 float grad_scale) {
    const auto n = static_cast<int64_t>(m_.size());
    POLYMOE_CHECK(static_cast<int64_t>(grads.size()) == n, "AdamW: {} gradients for {} moments",
                  grads.size(), n);
    std::vector<Segment> identity;
    if (segments.empty()) {
        POLYMOE_CHECK(params.size() == m_.size(), "AdamW: {} params for {} moments", params.size(),
                      n);
        identity.push_back({0, 0, n});
    }
    const std::vector<Segment>& segs = segments.empty() ? identity : segments;
    ++t_;
    const double bc1 = 1.0 - std::pow(c_.beta1, double(t_));
    const double bc2 = 1.0 - std::pow(c_.beta2, double(t_));
    const float step_size = static_cast<float>(lr / bc1);
    const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
    const auto b1 = static_cast<float>(c_.beta1), b2 = static_cast<float>(c_.beta2);
    const auto eps = static_cast<float>(c_.eps);
    const auto shrink = static_cast<float>(1.0 - lr * c_.weight_decay);
    const UpdateCoefs k{shrink, b1, b2, step_size, sqrt_bc2, eps, grad_scale};
    // Threads split the packed index range; each walks the segments its chunk overlaps.
    float* const pbase = params.data();
    const float* const gbase = grads.data();
    float* const mbase = m_.data();
    float* const vbase = v_.data();
    const uint8_t* const dbase = decay.empty() ? nullptr : decay.data();
    parallel_for(n, 1 << 14, [&](int64_t b, int64_t e, int) {
        auto it = std::upper_bound(segs.begin(), segs.end(), b,
                                   [](int64_t v, const Segment& s) { return v < s.offset; });
        for (--it; it != segs.end() && it->offset < e; ++it) {
            const int64_t lo = std::max(b, it->offset), hi = std::min(e, it->offset + it->numel);
            const int64_t shift = it->slab - it->offset;  // packed index i -> slab index i + shift
            update_range(pbase + lo + shift, gbase + lo, mbase + lo, vbase + lo,
                         dbase ? dbase + lo + shift : nullptr, hi - lo, k);
        }
    });
}

void AdamW::set_state(std::vector<float> m, std::vector<float> v, int64_t t) {
    POLYMOE_CHECK(m.size() == m_.size() && v.size() == v_.size(), "AdamW state of {} values for {}",
                  m.size(), m_.size());
    m_ = std::move(m);
    v_ = std::move(v);
    t_ = t;
}

double grad_norm(const std::vector<float>& grads) {
    // Per-thread partial sums combined in thread order: deterministic for a thread count.
    std::vector<double> part(static_cast<size_t>(num_threads()), 0.0);
    // Within a chunk, 16 interleaved double accumulators (lane j sums elements i = j mod 16),
    // added in lane order: two AVX-512 vectors of independent sums instead of one serial chain
    // of dependent additions, which was latency-bound (0.32 s for 1 B gradients, ~12 GB/s).
    constexpr int64_t kLanes = 16;
    const float* const g = grads.data();
    parallel_for(static_cast<int64_t>(grads.size()), 1 << 14, [&](int64_t b, int64_t e, int tid) {
        double acc[kLanes] = {};
        int64_t i = b;
        for (; i + kLanes <= e; i += kLanes)
            for (int64_t j = 0; j < kLanes; ++j)
                acc[j] += static_cast<double>(g[i + j]) * g[i + j];
        for (int64_t j = 0; i < e; ++i, ++j)
            acc[j] += static_cast<double>(g[i]) * g[i];
        double s = 0.0;
        for (double a : acc)
            s += a;
        part[tid] = s;
    });
    double sum = 0.0;
    for (double s : part)
        sum += s;
    return std::sqrt(sum);
}

float clip_coef(double norm, double max_norm) {
    if (max_norm <= 0) return 1.0f;
    const double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? static_cast<float>(coef) : 1.0f;
}

double clip_grad_norm(std::vector<float>& grads, double max_norm) {
    const double norm = grad_norm(grads);
    const float c = clip_coef(norm, max_norm);
    if (c < 1.0f) {
        float* g = grads.data();  // elementwise: the same values for any thread count
        parallel_for(static_cast<int64_t>(grads.size()), 1 << 14, [=](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i)
                g[i] *= c;
        });
    }
    return norm;
}

Schedule parse_schedule(const std::string& name) {
    if (name == "constant") return Schedule::Constant;
    if (name == "cosine") return Schedule::Cosine;
    if (name == "linear") return Schedule::Linear;
    fail("train", "--schedule {}: expected constant, cosine or linear", name);
}

double lr_at(int64_t t, int64_t steps, int64_t warmup, double lr, double min_ratio, Schedule s) {
    if (warmup > 0 && t <= warmup) return lr * double(t) / double(warmup);
    if (s == Schedule::Constant || steps <= warmup) return lr;
    const double q = double(t - warmup - 1) / double(steps - warmup);
    const double lo = min_ratio * lr;
    if (s == Schedule::Cosine) return lo + (lr - lo) * (1.0 + std::cos(M_PI * q)) / 2.0;
    return lr - (lr - lo) * q;
}

}  // namespace polymoe::train
