// Process resource figures for logs and benchmarks: peak resident set size from getrusage
// (ru_maxrss, which Linux reports in KiB): the high-water mark of the whole process so far,
// including memory already freed, so it answers "how much RAM did this run need"; and the
// current resident set size from /proc/self/statm (resident pages x page size), which answers
// "is memory still growing" over a long run (a leak shows as a rising current RSS while the
// peak only ever records the largest value).
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

namespace polymoe {

inline int64_t peak_rss_bytes() {
    struct rusage u {};
    if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
    return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

inline double peak_rss_mib() {
    return static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0);
}

// Current resident set size; 0 where /proc is not available.
inline int64_t current_rss_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long long size = 0, resident = 0;  // in pages
    const int n = std::fscanf(f, "%lld %lld", &size, &resident);
    std::fclose(f);
    if (n != 2) return 0;
    return static_cast<int64_t>(resident) * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

inline double current_rss_mib() {
    return static_cast<double>(current_rss_bytes()) / (1024.0 * 1024.0);
}

}  // namespace polymoe
