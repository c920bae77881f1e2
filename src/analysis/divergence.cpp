// Entropy, Jensen-Shannon divergence, mutual information and small regression helpers (see
// divergence.h). All sums run left to right in double so results are reproducible bit for bit.
#include "analysis/divergence.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace polymoe::analysis {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

double normalize(std::span<double> out, std::span<const double> in) {
    POLYMOE_CHECK(out.size() == in.size(), "normalize: sizes {} vs {}", out.size(), in.size());
    double total = 0;
    for (double v : in)
        total += v;
    const double inv = total > 0 ? 1.0 / total : 0.0;
    for (size_t i = 0; i < in.size(); ++i)
        out[i] = in[i] * inv;
    return total;
}

double entropy_nats(std::span<const double> p) {
    double h = 0;
    for (double v : p)
        if (v > 0) h -= v * std::log(v);
    return h;
}

double entropy_bits(std::span<const double> p) {
    return entropy_nats(p) / kLn2;
}

double jsd_bits(std::span<const double> p, std::span<const double> q) {
    POLYMOE_CHECK(p.size() == q.size(), "jsd: sizes {} vs {}", p.size(), q.size());
    double s = 0;
    for (size_t e = 0; e < p.size(); ++e) {
        const double a = p[e], b = q[e];
        const double m = 0.5 * (a + b);
        // Each term is >= its share of the divergence; m > 0 whenever a > 0 or b > 0.
        if (a > 0) s += a * std::log(a / m);
        if (b > 0) s += b * std::log(b / m);
    }
    const double bits = 0.5 * s / kLn2;
    return std::clamp(bits, 0.0, 1.0);
}

double normalized_jsd(double jsd, double h_p, double h_q, int num_experts) {
    const double bound = std::log2(static_cast<double>(num_experts)) - 0.5 * (h_p + h_q);
    // The bound is 0 only when both distributions are uniform (then JSD = 0); below ~1e-12 bits
    // the ratio is rounding noise.
    if (!(bound > 1e-12)) return 0.0;
    return std::clamp(jsd / bound, 0.0, 1.0);
}

double mutual_information_bits(std::span<const double> joint, int num_langs, int num_experts) {
    const size_t L = static_cast<size_t>(num_langs), E = static_cast<size_t>(num_experts);
    POLYMOE_CHECK(joint.size() == L * E, "mutual_information: size {} != {}x{}", joint.size(), L,
                  E);
    double total = 0;
    for (double v : joint)
        total += v;
    if (!(total > 0)) return kNaN;
    std::vector<double> pl(L, 0.0), pe(E, 0.0);
    for (size_t l = 0; l < L; ++l)
        for (size_t e = 0; e < E; ++e) {
            pl[l] += joint[l * E + e];
            pe[e] += joint[l * E + e];
        }
    // I = sum P(l,e) log(P(l,e) / (P(l) P(e))) with P = mass / total:
    //   P(l,e) / (P(l) P(e)) = mass(l,e) * total / (mass(l) mass(e)).
    double mi = 0;
    for (size_t l = 0; l < L; ++l)
        for (size_t e = 0; e < E; ++e) {
            const double v = joint[l * E + e];
            if (v > 0) mi += v * std::log(v * total / (pl[l] * pe[e]));
        }
    return std::max(0.0, mi / total / kLn2);
}

double nmi(std::span<const double> joint, int num_langs, int num_experts) {
    const size_t E = static_cast<size_t>(num_experts);
    std::vector<double> pl(static_cast<size_t>(num_langs), 0.0);
    for (size_t l = 0; l < pl.size(); ++l)
        for (size_t e = 0; e < E; ++e)
            pl[l] += joint[l * E + e];
    std::vector<double> p(pl.size());
    normalize(p, pl);
    const double hl = entropy_bits(p);
    if (!(hl > 1e-12)) return kNaN;
    return std::clamp(mutual_information_bits(joint, num_langs, num_experts) / hl, 0.0, 1.0);
}

double pearson(std::span<const double> x, std::span<const double> y) {
    POLYMOE_CHECK(x.size() == y.size(), "pearson: sizes {} vs {}", x.size(), y.size());
    const size_t n = x.size();
    if (n < 2) return kNaN;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; ++i) {
        mx += x[i];
        my += y[i];
    }
    mx /= static_cast<double>(n);
    my /= static_cast<double>(n);
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; ++i) {
        const double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (!(sxx > 0) || !(syy > 0)) return kNaN;
    return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

double ls_slope(std::span<const double> x, std::span<const double> y) {
    POLYMOE_CHECK(x.size() == y.size(), "ls_slope: sizes {} vs {}", x.size(), y.size());
    const size_t n = x.size();
    if (n < 2) return kNaN;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; ++i) {
        mx += x[i];
        my += y[i];
    }
    mx /= static_cast<double>(n);
    my /= static_cast<double>(n);
    double sxy = 0, sxx = 0;
    for (size_t i = 0; i < n; ++i) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
    }
    if (!(sxx > 0)) return kNaN;
    return sxy / sxx;
}

double quantile(std::vector<double>& v, double q) {
    if (v.empty()) return kNaN;
    std::sort(v.begin(), v.end());
    const double pos = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    const double frac = pos - static_cast<double>(lo);
    return v[lo] + (v[hi] - v[lo]) * frac;
}

}  // namespace polymoe::analysis
