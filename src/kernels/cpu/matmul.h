// Dense layers through oneDNN's matmul, the GEMM behind every projection, expert and the lm head.
// PyTorch nn.Linear convention:
//   forward:  out[M, N] = in[M, K] · w[N, K]^T (+ bias[N])
//   backward: din[M, K] = dout[M, N] · w[N, K]              (assigned)
//             dw[N, K] += dout[M, N]^T · in[M, K]            (accumulated, or assigned)
//             dbias[N] += sum over rows of dout (double)      (accumulated, or assigned)
// Weights are f32 or bf16 (`Weight`). f32 weights: f32 GEMM, f32 accumulation. bf16 weights:
// the input rows are rounded to bf16 (RNE) and oneDNN's bf16 GEMM (AVX512-BF16) accumulates in
// f32 and writes f32 — the "bf16 compute" mode, ~2x the f32 peak, at bf16 input precision.
// Primitives are created once per (dtype, M, N, K, ldin, bias) and cached. oneDNN threads with
// OpenMP and uses num_threads() (core/parallel.h); a fixed thread count gives bit-identical
// results.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace polymoe::kernels {

// A weight matrix stored in f32 or in bf16: exactly one pointer is set.
struct Weight {
    const float* f32 = nullptr;
    const bf16_t* bf16 = nullptr;
    Weight() = default;
    Weight(const float* p) : f32(p) {}    // NOLINT: implicit, f32 is the common case
    Weight(const bf16_t* p) : bf16(p) {}  // NOLINT
    bool empty() const { return !f32 && !bf16; }
    // The weight `elements` further on (the next expert of a stacked array).
    Weight offset(int64_t elements) const {
        Weight w;
        if (f32) w.f32 = f32 + elements;
        if (bf16) w.bf16 = bf16 + elements;
        return w;
    }
};

// out: [M, N] (assigned); in: [M, K] rows with stride ldin (>= K); w: [N, K]; bias: [N] or nullptr.
void linear_forward(float* out,
                    const float* in,
                    Weight w,
                    const float* bias,
                    int64_t M,
                    int64_t N,
                    int64_t K,
                    int64_t ldin = -1);

// Gradients of linear_forward; any of din, dw, dbias may be null to skip it (w may be empty when
// din is not requested). dout: [M, N]; in: [M, K]; w: [N, K]; dw is f32 (the master weights'
// gradient) in both modes. f32 weights: f32 GEMMs. bf16 weights (bf16 compute, mixed precision):
// dout, and for dw also in, are rounded to bf16 (RNE) and both GEMMs run in bf16 with f32
// accumulation, like the forward; din sees the same bf16 weight values as the forward did.
// accumulate = false assigns dw and dbias instead (no read of their old contents: the model's
// backward writes each weight gradient once, so the gradient buffer need not be zeroed).
void linear_backward(float* din,
                     float* dw,
                     float* dbias,
                     const float* dout,
                     const float* in,
                     Weight w,
                     int64_t M,
                     int64_t N,
                     int64_t K,
                     bool accumulate = true);

// General f32 GEMM on row-major matrices with leading dimensions (elements between rows):
//   c[M, N] = op(a)[M, K] · op(b)[K, N]      (acc: c += ...)
// op(a) is a[M, K] (lda >= K), or with ta the transpose of a stored [K, M] (lda >= M); likewise
// op(b) is b[K, N] (ldb >= N), or with tb the transpose of b stored [N, K] (ldb >= K). The
// attention kernels use it on one head's strided slice of q/k/v. Primitives are cached by
// shape, leading dimensions, transposes and accumulation.
void gemm(float* c,
          int64_t ldc,
          const float* a,
          int64_t lda,
          bool ta,
          const float* b,
          int64_t ldb,
          bool tb,
          int64_t M,
          int64_t N,
          int64_t K,
          bool acc);

}  // namespace polymoe::kernels
