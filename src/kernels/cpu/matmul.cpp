// oneDNN-backed linear layer (see matmul.h).
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/check.h"
#include "core/parallel.h"

namespace polymoe::kernels {

namespace {

using dnnl::memory;
using Dt = memory::data_type;

struct Engine {
    dnnl::engine eng{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{eng};
};

Engine& engine() {
    static Engine e;
    return e;
}

// Key: weight dtype, M, N, K, ldin, has_bias. M is part of the key: oneDNN 2.6 picks slower
// kernels for a run-time M with transposed weights (measured: 155 vs 213 GFLOP/s f32 on
// 512x1024x2048), and the distinct expert row counts of a model are few enough to cache.
using Key = std::tuple<Dt, int64_t, int64_t, int64_t, int64_t, bool>;

const dnnl::matmul& primitive(Dt dt, int64_t M, int64_t N, int64_t K, int64_t ldin, bool bias) {
    static std::mutex mu;
    static std::map<Key, dnnl::matmul> cache;
    std::lock_guard<std::mutex> lock(mu);
    Key key{dt, M, N, K, ldin, bias};
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    memory::desc src({M, K}, dt, {ldin, 1});
    memory::desc wei({K, N}, dt, {1, K});  // w[N, K] read as its transpose
    memory::desc dst({M, N}, Dt::f32, {N, 1});
    memory::desc b = bias ? memory::desc({1, N}, Dt::f32, {N, 1}) : memory::desc();
    dnnl::matmul::desc d(src, wei, b, dst);
    dnnl::matmul::primitive_desc pd(d, engine().eng);
    return cache.emplace(key, dnnl::matmul(pd)).first->second;
}

// General GEMM primitive (f32 x f32 or bf16 x bf16, f32 out), cached by operand dtype, shape,
// leading dimensions, transposes and accumulation.
using GemmKey =
    std::tuple<Dt, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool>;

memory::desc gemm_a(Dt dt, int64_t M, int64_t K, int64_t lda, bool ta) {
    return memory::desc({M, K}, dt, ta ? memory::dims{1, lda} : memory::dims{lda, 1});
}

memory::desc gemm_b(Dt dt, int64_t K, int64_t N, int64_t ldb, bool tb) {
    return memory::desc({K, N}, dt, tb ? memory::dims{1, ldb} : memory::dims{ldb, 1});
}

const dnnl::matmul& gemm_primitive(Dt dt,
                                   int64_t M,
                                   int64_t N,
                                   int64_t K,
                                   int64_t lda,
                                   int64_t ldb,
                                   int64_t ldc,
                                   bool ta,
                                   bool tb,
                                   bool acc) {
    static std::mutex mu;
    static std::map<GemmKey, dnnl::matmul> cache;
    std::lock_guard<std::mutex> lock(mu);
    GemmKey key{dt, M, N, K, lda, ldb, ldc, ta, tb, acc};
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    memory::desc c({M, N}, Dt::f32, {ldc, 1});
    dnnl::primitive_attr attr;
    if (acc) {
        dnnl::post_ops po;
        po.append_sum(1.0f);
        attr.set_post_ops(po);
    }
    dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(gemm_a(dt, M, K, lda, ta), gemm_b(dt, K, N, ldb, tb), memory::desc(), c),
        attr, engine().eng);
    return cache.emplace(key, dnnl::matmul(pd)).first->second;
}

// c = op(a) · op(b) (acc: +=) with a, b of dtype dt (see gemm in matmul.h).
void gemm_any(Dt dt,
              float* c,
              int64_t ldc,
              const void* a,
              int64_t lda,
              bool ta,
              const void* b,
              int64_t ldb,
              bool tb,
              int64_t M,
              int64_t N,
              int64_t K,
              bool acc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!acc)
            for (int64_t m = 0; m < M; ++m)
                std::fill(c + m * ldc, c + m * ldc + N, 0.0f);
        return;
    }
    auto& e = engine();
    const auto& mm = gemm_primitive(dt, M, N, K, lda, ldb, ldc, ta, tb, acc);
    memory ma(gemm_a(dt, M, K, lda, ta), e.eng, const_cast<void*>(a));
    memory mb(gemm_b(dt, K, N, ldb, tb), e.eng, const_cast<void*>(b));
    memory mc(memory::desc({M, N}, Dt::f32, {ldc, 1}), e.eng, c);
    mm.execute(e.stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    e.stream.wait();
}

// dst[r, c] = bf16(src[r, c]) for a [rows, cols] block (RNE, as convert_from_f32).
void round_rows(bf16_t* dst, const float* src, int64_t rows, int64_t cols) {
    parallel_for(rows, 4, [=](int64_t b, int64_t e, int) {
        for (int64_t r = b; r < e; ++r)
            convert_from_f32(dst + r * cols, DType::BF16, src + r * cols, cols);
    });
}

// dst[c, r] = bf16(src[r, c]): the transpose of a [rows, cols] block, rounded, in 32x32 tiles.
void round_transpose(bf16_t* dst, const float* src, int64_t rows, int64_t cols) {
    constexpr int64_t kTile = 32;
    parallel_for((cols + kTile - 1) / kTile, 1, [=](int64_t b, int64_t e, int) {
        for (int64_t c0 = b * kTile; c0 < std::min(cols, e * kTile); c0 += kTile)
            for (int64_t r0 = 0; r0 < rows; r0 += kTile)
                for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c)
                    for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
                        dst[c * rows + r] = f32_to_bf16(src[r * cols + c]);
    });
}

}  // namespace

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
          bool acc) {
    gemm_any(Dt::f32, c, ldc, a, lda, ta, b, ldb, tb, M, N, K, acc);
}

void linear_backward(float* din,
                     float* dw,
                     float* dbias,
                     const float* dout,
                     const float* in,
                     Weight w,
                     int64_t M,
                     int64_t N,
                     int64_t K,
                     bool accumulate) {
    if (w.bf16 && M > 0 && (din || dw)) {
        // bf16 compute: both GEMMs on bf16-rounded operands, f32 accumulation. The rounded
        // copies live in thread_local buffers, taken here before parallel_for forks.
        static thread_local std::vector<bf16_t> dout_b, in_b;
        if (din) {
            dout_b.resize(static_cast<size_t>(M * N));
            round_rows(dout_b.data(), dout, M, N);
            gemm_any(Dt::bf16, din, K, dout_b.data(), N, false, w.bf16, K, false, M, K, N, false);
        }
        if (dw) {
            dout_b.resize(static_cast<size_t>(M * N));
            in_b.resize(static_cast<size_t>(M * K));
            round_transpose(dout_b.data(), dout, M, N);  // [N, M]
            round_rows(in_b.data(), in, M, K);
            gemm_any(Dt::bf16, dw, K, dout_b.data(), M, false, in_b.data(), K, false, N, K, M,
                     accumulate);
        }
    } else {
        POLYMOE_CHECK(!din || !w.empty(), "linear_backward: din requested without a weight");
        if (din) gemm(din, K, dout, N, false, w.f32, K, false, M, K, N, false);  // [M,N]·[N,K]
        if (dw) gemm(dw, K, dout, N, true, in, K, false, N, K, M, accumulate);   // [N,M]·[M,K]
    }
    if (dbias) {
        parallel_for(N, 64, [&](int64_t b, int64_t e, int) {
            for (int64_t n = b; n < e; ++n) {
                double s = 0.0;
                for (int64_t m = 0; m < M; ++m)
                    s += dout[m * N + n];
                dbias[n] = accumulate ? dbias[n] + static_cast<float>(s) : static_cast<float>(s);
            }
        });
    }
}

void linear_forward(float* out,
                    const float* in,
                    Weight w,
                    const float* bias,
                    int64_t M,
                    int64_t N,
                    int64_t K,
                    int64_t ldin) {
    if (ldin < 0) ldin = K;
    if (M == 0 || N == 0) return;
    POLYMOE_CHECK(K > 0 && !w.empty(), "linear_forward: K = {}, weight set: {}", K, !w.empty());
    auto& e = engine();
    const Dt dt = w.bf16 ? Dt::bf16 : Dt::f32;
    void* src_ptr = const_cast<float*>(in);
    void* wei_ptr =
        w.bf16 ? const_cast<bf16_t*>(w.bf16) : static_cast<void*>(const_cast<float*>(w.f32));
    int64_t ld = ldin;
    static thread_local std::vector<bf16_t> in_bf16;
    if (w.bf16) {  // round the input rows to bf16 (compact, stride K)
        in_bf16.resize(static_cast<size_t>(M * K));
        bf16_t* dst = in_bf16.data();  // thread_local: take the caller's buffer before forking
        parallel_for(M, 4, [=](int64_t b, int64_t end, int) {
            for (int64_t m = b; m < end; ++m)
                convert_from_f32(dst + m * K, DType::BF16, in + m * ldin, K);
        });
        src_ptr = dst;
        ld = K;
    }
    const auto& mm = primitive(dt, M, N, K, ld, bias != nullptr);
    memory src(memory::desc({M, K}, dt, {ld, 1}), e.eng, src_ptr);
    memory wei(memory::desc({K, N}, dt, {1, K}), e.eng, wei_ptr);
    memory dst(memory::desc({M, N}, Dt::f32, {N, 1}), e.eng, out);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
    if (bias)
        args.emplace(DNNL_ARG_BIAS, memory(memory::desc({1, N}, Dt::f32, {N, 1}), e.eng,
                                           const_cast<float*>(bias)));
    mm.execute(e.stream, args);
    e.stream.wait();
}

}  // namespace polymoe::kernels
