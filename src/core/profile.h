// Per-region wall-time profile of a forward or a training step, for `polymoe bench --profile`:
// where the time goes, measured rather than guessed (issue 11). Regions are timed only on the
// thread that orchestrates a step (the kernels parallelise inside a region), so the accumulators
// are plain doubles; with profiling off (the default) a region costs one relaxed atomic load.
// Regions do not nest: a Scope wraps kernel calls, never another Scope. A Phase tags the regions
// inside it (forward, backward, the recomputed forward inside backward, the optimizer step).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace polymoe::prof {

enum class Phase : int { Forward, Backward, Recompute, Step, kCount };

enum class Region : int {
    Embedding,  // embedding lookup / its gradient scatter
    Norm,       // input, post-attention, q/k and final RMSNorms
    QkvProj,    // q, k, v projections (GEMMs)
    Rope,       // rotary embedding (and clip_qkv)
    Attention,  // causal softmax attention core
    OProj,      // attention output projection (GEMM)
    Router,     // router logits GEMM, softmax/top-k, router-loss terms
    Experts,    // grouped expert SwiGLU MLPs (gather, GEMMs, scatter)
    Residual,   // residual adds and gradient accumulation between blocks
    Save,       // copies of activations kept for backward
    Head,       // final lm head and cross-entropy (chunked in training)
    GradZero,   // zeroing the gradient slab
    Clip,       // global-norm gradient clipping
    Optimizer,  // AdamW update (and the bf16 copy refresh)
    kCount
};

void set_enabled(bool on);
bool enabled();
void reset();

double now_seconds();
void add(Region r, double seconds);

// Tags regions with a phase until destroyed, then restores the previous phase.
class PhaseScope {
public:
    explicit PhaseScope(Phase p);
    ~PhaseScope();
    PhaseScope(const PhaseScope&) = delete;
    PhaseScope& operator=(const PhaseScope&) = delete;

private:
    Phase prev_;
};

// Times its lifetime into region r of the current phase.
class Scope {
public:
    explicit Scope(Region r) : r_(r), on_(enabled()), t0_(on_ ? now_seconds() : 0.0) {}
    ~Scope() {
        if (on_) add(r_, now_seconds() - t0_);
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

private:
    Region r_;
    bool on_;
    double t0_;
};

struct Entry {
    std::string name;  // "<phase>.<region>", e.g. "bwd.experts"
    double seconds = 0;
    int64_t calls = 0;
};

// The regions with at least one call since the last reset, in phase then region order.
std::vector<Entry> snapshot();

}  // namespace polymoe::prof
