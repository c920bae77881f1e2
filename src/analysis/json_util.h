// Small JSON helpers shared by the analysis sections: numbers with NaN written as null, and the
// confidence-interval object {value, lo, hi, n_boot} every bootstrapped number uses.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <span>

#include "analysis/resample.h"

namespace polymoe::analysis {

inline nlohmann::json num(double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

inline nlohmann::json num_array(std::span<const double> v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v)
        a.push_back(num(x));
    return a;
}

inline nlohmann::json ci_json(double value, const Interval& iv) {
    return {{"value", num(value)}, {"lo", num(iv.lo)}, {"hi", num(iv.hi)}, {"n_boot", iv.n}};
}

}  // namespace polymoe::analysis
