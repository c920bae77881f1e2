// Kernel benchmarks (Google Benchmark) on OLMoE-1B-7B shapes with a GFLOP/s counter.
// Napkin math: at ~220 GFLOP/s (f32 oneDNN, 2 Zen4 cores) a [512, 2048] x [1024, 2048]^T expert
// GEMM (2.1 GFLOP) takes ~10 ms; RMSNorm and the router are memory-bound and should be <1% of it.
// The training step's expert GEMMs see ~64 rows each at B x S = 1 x 512 (T K / E): their weight
// gradient reduces over those 64 rows only and writes (accumulates) a full [1024, 2048] f32 block,
// 16 FLOP per byte of dw traffic. AdamW moves 28 bytes per parameter (+1 for the decay mask) and
// the gradient norm reads 4: both are bound by memory bandwidth, not FLOPs.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/rng.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/router.h"
#include "train/optimizer.h"

namespace {

std::vector<float> randn(int64_t n, uint64_t seed) {
    std::vector<float> v(static_cast<size_t>(n));
    const uint64_t key = polymoe::rng_key(seed, "bench");
    for (int64_t i = 0; i < n; ++i)
        v[i] = static_cast<float>(polymoe::rng_normal(key, i));
    return v;
}

void BM_linear_forward(benchmark::State& st) {
    const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
    auto a = randn(M * K, 1), w = randn(N * K, 2);
    std::vector<float> c(M * N);
    for (auto _ : st)
        polymoe::kernels::linear_forward(c.data(), a.data(), w.data(), nullptr, M, N, K);
    st.counters["GFLOP/s"] =
        benchmark::Counter(2.0 * double(M * N * K) * double(st.iterations()),
                           benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_linear_forward)
    ->Args({512, 1024, 2048})
    ->Args({64, 1024, 2048})
    ->Args({512, 2048, 2048})
    ->Args({512, 50304, 2048})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Backward of one linear layer: mode 0 the input gradient only, mode 1 the weight gradient only
// (accumulated into dw, as the trainer does).
void BM_linear_backward(benchmark::State& st) {
    const int64_t M = st.range(0), N = st.range(1), K = st.range(2), mode = st.range(3);
    auto dout = randn(M * N, 9), in = randn(M * K, 10), w = randn(N * K, 11);
    std::vector<float> din(M * K), dw(N * K, 0.0f);
    for (auto _ : st)
        polymoe::kernels::linear_backward(mode == 0 ? din.data() : nullptr,
                                          mode == 1 ? dw.data() : nullptr, nullptr, dout.data(),
                                          in.data(), w.data(), M, N, K);
    st.counters["GFLOP/s"] =
        benchmark::Counter(2.0 * double(M * N * K) * double(st.iterations()),
                           benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_linear_backward)
    ->Args({64, 1024, 2048, 0})
    ->Args({64, 1024, 2048, 1})
    ->Args({64, 2048, 1024, 0})
    ->Args({64, 2048, 1024, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// AdamW over n f32 parameters with a decay mask: 29 bytes per element.
void BM_adamw_step(benchmark::State& st) {
    const auto n = static_cast<size_t>(st.range(0));
    std::vector<float> p(n, 0.5f), g(n, 1e-3f);
    std::vector<uint8_t> decay(n, 1);
    polymoe::train::AdamW opt({}, n);
    for (auto _ : st)
        opt.step(p, g, 1e-4, decay, {}, 0.5f);
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(n) * 29);
}
BENCHMARK(BM_adamw_step)->Arg(64 << 20)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_grad_norm(benchmark::State& st) {
    const auto n = static_cast<size_t>(st.range(0));
    std::vector<float> g(n, 1e-3f);
    for (auto _ : st)
        benchmark::DoNotOptimize(polymoe::train::grad_norm(g));
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(n) * 4);
}
BENCHMARK(BM_grad_norm)->Arg(64 << 20)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_rmsnorm_forward(benchmark::State& st) {
    const int64_t rows = st.range(0), cols = st.range(1);
    auto x = randn(rows * cols, 3), w = randn(cols, 4);
    std::vector<float> y(rows * cols);
    for (auto _ : st)
        polymoe::kernels::rmsnorm_forward(y.data(), nullptr, x.data(), w.data(), rows, cols, 1e-5f);
    st.SetBytesProcessed(int64_t(st.iterations()) * rows * cols * 8);
}
BENCHMARK(BM_rmsnorm_forward)->Args({512, 2048})->UseRealTime();

void BM_router_forward(benchmark::State& st) {
    const int64_t T = st.range(0), E = st.range(1), K = st.range(2);
    auto z = randn(T * E, 5);
    std::vector<float> p(T * E), w(T * K), m(T), l(T);
    std::vector<int32_t> idx(T * K);
    for (auto _ : st)
        polymoe::kernels::router_forward(p.data(), idx.data(), w.data(), m.data(), l.data(),
                                         z.data(), T, E, K, false);
}
BENCHMARK(BM_router_forward)->Args({512, 64, 8})->UseRealTime();

void BM_attention_forward(benchmark::State& st) {
    const int64_t S = st.range(0), NH = 16, HD = 128;
    auto q = randn(S * NH * HD, 6), k = randn(S * NH * HD, 7), v = randn(S * NH * HD, 8);
    std::vector<float> o(S * NH * HD);
    for (auto _ : st)
        polymoe::kernels::attention_forward(o.data(), q.data(), k.data(), v.data(), nullptr, 1, S,
                                            NH, NH, HD);
    st.counters["GFLOP/s"] = benchmark::Counter(
        4.0 * double(NH * HD) * double(S) * double(S + 1) / 2 * double(st.iterations()),
        benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_attention_forward)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
