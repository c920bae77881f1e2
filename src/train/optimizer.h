// AdamW (PyTorch torch.optim.AdamW semantics), global-norm gradient clipping (PyTorch
// clip_grad_norm_) and the learning-rate schedules, over the flat parameter slab.
//   decay:   p *= 1 - lr * wd                          (decoupled, before the Adam update)
//   moments: m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
//   update:  p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   clip:    n = sqrt(sum g^2) (double); if max_norm > 0 and c = max_norm / (n + 1e-6) < 1: g *= c
//   lr(t), t = 1..steps: warmup lr*t/warmup for t <= warmup; then constant lr, or from lr
//   towards lr_min = min_ratio*lr over the remaining steps, with q = (t - warmup - 1) /
//   (steps - warmup): cosine lr_min + (lr - lr_min)(1 + cos(pi q))/2, linear lr - (lr - lr_min) q.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/huge_pages.h"

namespace polymoe::train {

// A run of trainable parameters: slab elements [slab, slab + numel) have their gradients and
// moments at [offset, offset + numel) of the packed buffers (--trainable; frozen parameters have
// neither). Segments are sorted by offset and tile [0, n).
struct Segment {
    int64_t slab = 0, offset = 0, numel = 0;
};

struct AdamWConfig {
    double lr = 4e-4, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

class AdamW {
public:
    // n: trainable elements (the moments are allocated for these only).
    AdamW(const AdamWConfig& c, size_t n) : c_(c) {
        resize_huge(m_, n);
        resize_huge(v_, n);
    }
    // One update with learning rate `lr`; `decay[i]` false excludes slab element i from weight
    // decay (empty: decay everything). `grads` and the moments are packed by `segments` (empty:
    // the identity, grads in slab layout); parameters outside every segment are not touched.
    // Increments the step count used for bias correction. `grad_scale` multiplies each gradient
    // as it is read (the clipping coefficient, see clip_coef): the same f32 products as scaling
    // the gradients in place first, without that extra pass over them.
    void step(std::vector<float>& params,
              const std::vector<float>& grads,
              double lr,
              const std::vector<uint8_t>& decay = {},
              const std::vector<Segment>& segments = {},
              float grad_scale = 1.0f);
    int64_t steps() const { return t_; }
    // Moment estimates (same layout as the parameter slab) and step count, for checkpointing.
    const std::vector<float>& exp_avg() const { return m_; }
    const std::vector<float>& exp_avg_sq() const { return v_; }
    void set_state(std::vector<float> m, std::vector<float> v, int64_t t);

private:
    AdamWConfig c_;
    std::vector<float> m_, v_;
    int64_t t_ = 0;
};

// The global L2 norm of the gradients (double accumulation, deterministic for a thread count).
double grad_norm(const std::vector<float>& grads);

// PyTorch's clip_grad_norm_ coefficient: max_norm / (norm + 1e-6) as f32 when that is below 1,
// else 1 (also when max_norm <= 0: clipping off).
float clip_coef(double norm, double max_norm);

// Returns the global L2 norm before clipping and scales `grads` in place by clip_coef. The trainer
// instead passes clip_coef to AdamW::step (one pass over the gradients fewer).
double clip_grad_norm(std::vector<float>& grads, double max_norm);

enum class Schedule { Constant, Cosine, Linear };
Schedule parse_schedule(const std::string& name);
double lr_at(int64_t t, int64_t steps, int64_t warmup, double lr, double min_ratio, Schedule s);

}  // namespace polymoe::train
