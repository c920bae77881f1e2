// Process resource figures for logs and benchmarks: peak resident set size from getrusage
// (ru_maxrss, which Linux reports in KiB): the high-water mark of the whole process so far,
// including memory already freed, so it answers "how much RAM did this run need".
#pragma once

#include <sys/resource.h>

#include <cstdint>

namespace polymoe {

inline int64_t peak_rss_bytes() {
    struct rusage u {};
    if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
    return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

inline double peak_rss_mib() {
    return static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0);
}

}  // namespace polymoe
