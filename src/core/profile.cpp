// Accumulators of core/profile.h: one [phase][region] table of seconds and call counts.
#include "core/profile.h"

#include <array>
#include <atomic>

namespace polymoe::prof {

namespace {

constexpr int kPhases = static_cast<int>(Phase::kCount);
constexpr int kRegions = static_cast<int>(Region::kCount);

constexpr std::array<const char*, kPhases> kPhaseNames = {"fwd", "bwd", "recompute", "step"};
constexpr std::array<const char*, kRegions> kRegionNames = {
    "embedding", "norm",     "qkv_proj", "rope", "attention", "o_proj", "router",
    "experts",   "residual", "save",     "head", "grad_zero", "clip",   "optimizer"};

std::atomic<bool> g_enabled{false};
Phase g_phase = Phase::Forward;
std::array<std::array<double, kRegions>, kPhases> g_seconds{};
std::array<std::array<int64_t, kRegions>, kPhases> g_calls{};

}  // namespace

void set_enabled(bool on) {
    g_enabled.store(on, std::memory_order_relaxed);
}
bool enabled() {
    return g_enabled.load(std::memory_order_relaxed);
}

void reset() {
    g_seconds = {};
    g_calls = {};
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void add(Region r, double seconds) {
    const auto p = static_cast<size_t>(g_phase), i = static_cast<size_t>(r);
    g_seconds[p][i] += seconds;
    ++g_calls[p][i];
}

PhaseScope::PhaseScope(Phase p) : prev_(g_phase) {
    g_phase = p;
}
PhaseScope::~PhaseScope() {
    g_phase = prev_;
}

std::vector<Entry> snapshot() {
    std::vector<Entry> out;
    for (size_t p = 0; p < kPhases; ++p)
        for (size_t i = 0; i < kRegions; ++i)
            if (g_calls[p][i] > 0)
                out.push_back({std::string(kPhaseNames[p]) + "." + kRegionNames[i], g_seconds[p][i],
                               g_calls[p][i]});
    return out;
}

}  // namespace polymoe::prof
