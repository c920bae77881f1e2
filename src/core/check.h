// Invariant checks for bugs (not user errors): print file:line and the message, then abort.
// POLYMOE_DCHECK compiles away in release builds and may sit in hot loops.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

#define POLYMOE_CHECK(cond, ...)                                                             \
    do {                                                                                     \
        if (!(cond)) [[unlikely]] {                                                          \
            std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, #cond, \
                         fmt::format(__VA_ARGS__).c_str());                                  \
            std::abort();                                                                    \
        }                                                                                    \
    } while (0)

#ifdef NDEBUG
#define POLYMOE_DCHECK(cond, ...) \
    do {                          \
    } while (0)
#else
#define POLYMOE_DCHECK(cond, ...) POLYMOE_CHECK(cond, __VA_ARGS__)
#endif
