// Transparent huge pages for the few large, long-lived buffers: the f32 weight slab and its bf16
// copy, gradients, AdamW moments, the f32 store of bf16-resident weights, all-token logits.
//
// Why: glibc serves these from fresh anonymous mmaps, which the kernel backs with 4 KiB pages on
// first touch. Loading a 1 B-parameter model (4.2 GB slab + 2.1 GB bf16 copy) took 1.6 M page
// faults; on the development VM each fault costs ~13 us of hypervisor and clearing time, so a
// `polymoe forward` of 512 tokens spent 21 s in the kernel for a 1.2 s forward. With 2 MiB pages
// the same memory takes ~3,000 faults. Streaming passes over gigabytes (AdamW, the gradient
// norm, expert weights read once per forward) also stop missing the TLB every 4 KiB.
//
// Where THP is "never" (or not Linux), madvise fails or is absent and the buffers behave as
// before: the advice changes speed only, never values or sizes.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace polymoe {

// Buffers smaller than this keep the allocator's default pages (a huge page per small vector
// would waste memory, and the fault cost is negligible).
inline constexpr size_t kHugePageMinBytes = size_t{8} << 20;

// Advises the kernel to back the 2 MiB-aligned part of [p, p + bytes) with huge pages
// (madvise MADV_HUGEPAGE). Returns whether advice was given: false for ranges below
// kHugePageMinBytes, without an aligned 2 MiB page inside, or where the kernel refuses.
bool advise_huge_pages(void* p, size_t bytes);

// v.resize(n, value), but a vector that must grow to kHugePageMinBytes or more is moved to a
// fresh allocation that is advised before any of it is touched (advice after the zero fill
// would come too late: the pages would already be 4 KiB ones). Existing elements are kept.
template <class T>
void resize_huge(std::vector<T>& v, size_t n, const T& value = T()) {
    if (n > v.capacity() && n * sizeof(T) >= kHugePageMinBytes) {
        std::vector<T> fresh;
        fresh.reserve(n);
        advise_huge_pages(fresh.data(), n * sizeof(T));
        fresh.insert(fresh.end(), std::make_move_iterator(v.begin()),
                     std::make_move_iterator(v.end()));
        v.swap(fresh);
    }
    v.resize(n, value);
}

}  // namespace polymoe
