// parallel_for over OpenMP with a static, contiguous split: chunk i of n always goes to the same
// thread for a given thread count, so per-thread partial results can be reduced in a fixed order
// and the same thread count gives bit-identical results. Nothing may throw inside `fn`.
#pragma once

#include <algorithm>
#include <cstdint>

namespace polymoe {

// Number of threads used by parallel_for (default: all cores). n <= 0 means all cores.
void set_num_threads(int n);
int num_threads();

// Calls fn(begin, end, tid) on [0, n) split into at most num_threads() contiguous ranges of
// at least `grain` items each.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    if (n <= 0) return;
    int64_t t =
        std::min<int64_t>(num_threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
    if (t <= 1) {
        fn(int64_t{0}, n, 0);
        return;
    }
#pragma omp parallel for num_threads(static_cast <int>(t)) schedule(static, 1)
    for (int64_t i = 0; i < t; ++i) {
        int64_t b = n * i / t, e = n * (i + 1) / t;
        fn(b, e, static_cast<int>(i));
    }
}

}  // namespace polymoe
