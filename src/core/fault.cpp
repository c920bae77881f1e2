// Fault injection (see fault.h).
#include "core/fault.h"

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace polymoe {

namespace {

struct FaultSpec {
    std::string site;
    long long k = 0;  // 0: disabled
};

FaultSpec parse_spec() {
    FaultSpec s;
    const char* env = std::getenv("POLYMOE_FAULT_INJECT");
    if (!env || !*env) return s;
    const std::string v(env);
    const size_t colon = v.rfind(':');
    char* end = nullptr;
    const long long k =
        colon == std::string::npos ? 0 : std::strtoll(v.c_str() + colon + 1, &end, 10);
    if (colon == std::string::npos || colon == 0 || k < 1 || !end || *end != '\0') {
        fmt::print(stderr,
                   "warning: POLYMOE_FAULT_INJECT: expected <site>:<k> with k >= 1, found '{}' "
                   "(ignored)\n",
                   v);
        return s;
    }
    s.site = v.substr(0, colon);
    s.k = k;
    return s;
}

// Passes are counted only for the configured site, so other sites never shift k.
// Returns the configured k when this pass is the k-th, else 0.
long long reached(std::string_view site) {
    static const FaultSpec spec = parse_spec();
    static std::atomic<long long> passes{0};
    if (spec.k == 0 || site != spec.site) return 0;
    return passes.fetch_add(1, std::memory_order_relaxed) + 1 == spec.k ? spec.k : 0;
}

}  // namespace

void fault_point(std::string_view site, std::string_view what) {
    const long long k = reached(site);
    if (k == 0) return;
    fmt::print(stderr, "fault injection: SIGKILL at {} point {} ({})\n", site, k, what);
    std::fflush(stderr);
    std::raise(SIGKILL);
}

bool fault_hit(std::string_view site) {
    const long long k = reached(site);
    if (k == 0) return false;
    fmt::print(stderr, "fault injection: {} at pass {}\n", site, k);
    return true;
}

}  // namespace polymoe
