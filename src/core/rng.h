// Counter-based normal random numbers for parameter init, chosen so that an independent numpy
// script (tools/polymoe_rng.py) reproduces the exact same weights: every value depends only on
// (seed, parameter name, element index), never on thread count or generation order.
//   key   = splitmix64(seed ^ fnv1a64(name))
//   u1,u2 = (splitmix64(key + 2i) >> 11 + 0.5) * 2^-53,  (splitmix64(key + 2i + 1) >> 11) * 2^-53
//   z_i   = sqrt(-2 ln u1) * cos(2 pi u2)          (Box-Muller in double, cos branch only)
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace polymoe {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

inline uint64_t fnv1a64(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

inline uint64_t rng_key(uint64_t seed, std::string_view name) {
    return splitmix64(seed ^ fnv1a64(name));
}

// The i-th uniform double in [0, 1) of the stream `key` (53 random bits).
inline double rng_uniform(uint64_t key, uint64_t i) {
    return static_cast<double>(splitmix64(key + i) >> 11) * (1.0 / 9007199254740992.0);
}

// The i-th standard normal of the stream `key`.
inline double rng_normal(uint64_t key, uint64_t i) {
    constexpr double kInv53 = 1.0 / 9007199254740992.0;
    double u1 = (static_cast<double>(splitmix64(key + 2 * i) >> 11) + 0.5) * kInv53;
    double u2 = static_cast<double>(splitmix64(key + 2 * i + 1) >> 11) * kInv53;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace polymoe
