// Routing-analysis benchmarks (Google Benchmark) on a synthetic trace of OLMoE-1B-7B shape:
// 16 recorded layers, E = 64, K = 8, 10 languages (5 high-resource + 5 related low-resource),
// 640k tokens = 10.24M (token, layer) records = 82M expert slots, 1280 documents of ~500 tokens
// with parallel passages. The target is "10M records in a few seconds on 2 cores, bootstrap
// included" (DESIGN.md).
//
// Napkin math: the streaming pass reads 6 bytes per slot (u16 expert + f32 weight), ~0.5 GB, and
// does ~3 scattered adds per slot plus K(K-1)/2 = 28 pair increments per record (co-activation):
// ~0.6 G simple operations, a few hundred ms on 2 cores. Each bootstrap replicate or permutation
// re-aggregates 1280 units x 16 x 64 doubles (1.3M adds, ~10 MB from cache) and computes 45 pair
// JSDs per layer (~92k logs): ~1 ms each, ~0.4 s for 200 + 200 on 2 threads.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "analysis/analysis.h"
#include "analysis/synthetic.h"
#include "core/parallel.h"
#include "core/timer.h"

namespace {

using namespace polymoe::analysis;

SyntheticSpec olmoe_spec(uint64_t routing_seed) {
    SyntheticSpec s;
    s.E = 64;
    s.K = 8;
    s.R = 16;
    s.languages = {{"arb", "Arabic", "Arab", "", "1", ""},
                   {"pes_1", "Farsi", "Arab", "", "2", "arb"},
                   {"hin", "Hindi", "Deva", "", "1", ""},
                   {"nep", "Nepali", "Deva", "", "2", "hin"},
                   {"rus", "Russian", "Cyrl", "", "1", ""},
                   {"bel", "Belarusian", "Cyrl", "", "2", "rus"},
                   {"spa", "Spanish", "Latn", "", "1", ""},
                   {"glg", "Galician", "Latn", "", "2", "spa"},
                   {"cmn_hans", "Mandarin", "Hans", "", "1", ""},
                   {"yue", "Cantonese", "Hant", "", "2", "cmn_hans"}};
    s.docs_per_lang = 128;
    s.tokens_per_doc = 500;  // lengths uniform in [250, 750]: 64k tokens per language
    s.separation = 0.8;
    s.parallel = true;
    s.vocab_shared = 2000;
    s.vocab_per_lang = 5000;
    s.seed = 1;
    s.routing_seed = routing_seed;
    s.chunk_tokens = 1 << 16;
    return s;
}

const OwnedTrace& trace_a() {
    static const OwnedTrace t = [] {
        polymoe::Timer timer;
        OwnedTrace x = make_synthetic_trace(olmoe_spec(1));
        std::fprintf(stderr, "synthetic trace: %lld tokens x 16 layers in %.1f s\n",
                     static_cast<long long>(x.view().num_tokens()), timer.seconds());
        return x;
    }();
    return t;
}

const OwnedTrace& trace_b() {
    static const OwnedTrace t = make_synthetic_trace(olmoe_spec(2));
    return t;
}

void set_counters(benchmark::State& st, int64_t tokens) {
    const double records = static_cast<double>(tokens) * 16;
    st.counters["records"] = records;
    st.counters["records/s"] = benchmark::Counter(records * static_cast<double>(st.iterations()),
                                                  benchmark::Counter::kIsRate);
    st.counters["threads"] = polymoe::num_threads();
}

// The streaming pass alone. Arg 0: per-unit and per-language sums only; 1: plus
// co-activation; 2: plus vocabulary-restricted sums; 3: plus top tokens (the default).
void BM_collect_trace_stats(benchmark::State& st) {
    const auto v = trace_a().view();
    CollectOptions co;
    co.coactivation = st.range(0) >= 1;
    co.restricted = st.range(0) >= 2;
    co.top_tokens = st.range(0) >= 3 ? 10 : 0;
    for (auto _ : st) {
        TraceStats s = collect_trace_stats(v, co);
        benchmark::DoNotOptimize(s.unit_sums.data());
    }
    set_counters(st, v.num_tokens());
}
BENCHMARK(BM_collect_trace_stats)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();

// The whole analysis of one trace as the CLI runs it by default: the pass, 200 bootstrap
// replicates, 200 permutations, split-half floor (20 repeats), paired JSD (with its bootstrap),
// restricted JSD, co-activation, vocabulary tables and the JSON document.
void BM_analyze(benchmark::State& st) {
    const auto v = trace_a().view();
    AnalysisOptions o;
    o.bootstrap = static_cast<int>(st.range(0));
    o.permutations = static_cast<int>(st.range(0));
    for (auto _ : st) {
        auto j = analyze({{"a", &v}}, o);
        benchmark::DoNotOptimize(j);
    }
    set_counters(st, v.num_tokens());
}
BENCHMARK(BM_analyze)->Arg(0)->Arg(200)->Unit(benchmark::kMillisecond)->UseRealTime();

// Two checkpoints' traces of the same tokens: both analyses plus drift (overlap, paired
// bootstrap), i.e. 20.5M records.
void BM_analyze_with_drift(benchmark::State& st) {
    const auto a = trace_a().view();
    const auto b = trace_b().view();
    AnalysisOptions o;
    for (auto _ : st) {
        auto j = analyze({{"a", &a}, {"b", &b}}, o);
        benchmark::DoNotOptimize(j);
    }
    set_counters(st, 2 * a.num_tokens());
}
BENCHMARK(BM_analyze_with_drift)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
