// Golden comparison shared by the golden and CLI tests: max-normalised error per tensor
// (|got - ref| <= tol * max|ref|; routing margins scaled by max|router_probs|), top-k compared as
// sets with weights matched by expert id, and rows whose golden routing margin is below
// `margin_threshold` exempt from the top-k checks (and counted). A failed comparison lists every
// offending tensor.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/npy.h"
#include "io/safetensors.h"

namespace polymoe::testing {

using Tensors = std::map<std::string, std::vector<double>>;

// A fixture's tokens.npy / attention_mask.npy ([S] or [B, S], any integer dtype).
inline std::vector<int32_t> read_int_matrix(const std::string& path, int64_t* B, int64_t* S) {
    io::NpyArray a = io::read_npy(path);
    *B = a.shape.size() == 2 ? a.shape[0] : 1;
    *S = a.shape.back();
    std::vector<int32_t> v(static_cast<size_t>(a.numel()));
    for (int64_t i = 0; i < a.numel(); ++i)
        v[i] = static_cast<int32_t>(a.get_int(i));
    return v;
}

inline std::vector<double> read_tensor(const io::SafetensorsFile& f, const io::TensorInfo& t) {
    std::vector<double> v(static_cast<size_t>(t.numel()));
    const void* p = f.data(t);
    for (int64_t i = 0; i < t.numel(); ++i) {
        switch (t.dtype) {
            case DType::F64:
                v[i] = static_cast<const double*>(p)[i];
                break;
            case DType::F32:
                v[i] = static_cast<const float*>(p)[i];
                break;
            case DType::I64:
                v[i] = static_cast<double>(static_cast<const int64_t*>(p)[i]);
                break;
            case DType::I32:
                v[i] = static_cast<const int32_t*>(p)[i];
                break;
            default:
                v[i] = NAN;
        }
    }
    return v;
}

inline Tensors read_all(const io::SafetensorsFile& f) {
    Tensors out;
    for (const auto& t : f.tensors())
        out[t.name] = read_tensor(f, t);
    return out;
}

struct Comparison {
    double worst = 0;  // largest max-normalised error over compared float tensors
    std::string worst_name;
    int64_t exempt_rows = 0;  // router rows skipped for top-k checks (margin < threshold)
    int64_t topk_mismatches = 0;
    std::vector<std::string> failures;
    bool ok() const { return failures.empty(); }
    std::string report() const {
        char w[32];
        std::snprintf(w, sizeof w, "%.3g", worst);
        std::string s = "worst " + worst_name + " " + w + "; exempt rows " +
                        std::to_string(exempt_rows) + "; top-k mismatches " +
                        std::to_string(topk_mismatches);
        for (const auto& f : failures)
            s += "\n  " + f;
        return s;
    }
};

inline double max_norm_err(const std::vector<double>& got, const std::vector<double>& ref) {
    double d = 0, m = 1e-300;
    for (size_t i = 0; i < ref.size(); ++i) {
        d = std::max(d, std::abs(got[i] - ref[i]));
        m = std::max(m, std::abs(ref[i]));
    }
    if (std::isnan(d)) return INFINITY;
    return d / m;
}

// Compares every tensor of `golden` present in `got` (all golden tensors must be present, except
// names starting with a prefix in `optional`).
inline Comparison compare(const Tensors& got,
                          const Tensors& golden,
                          double tol,
                          double margin_threshold = 1e-6,
                          const std::vector<std::string>& optional = {"hidden."}) {
    Comparison c;
    for (const auto& [name, ref] : golden) {
        auto it = got.find(name);
        if (it == got.end()) {
            bool opt = false;
            for (const auto& p : optional)
                opt |= name.rfind(p, 0) == 0;
            if (!opt) c.failures.push_back(name + ": missing from output");
            continue;
        }
        const auto& g = it->second;
        if (g.size() != ref.size()) {
            c.failures.push_back(name + ": size " + std::to_string(g.size()) + " vs golden " +
                                 std::to_string(ref.size()));
            continue;
        }
        const bool is_idx = name.rfind("topk_idx.", 0) == 0;
        const bool is_w = name.rfind("topk_weight.", 0) == 0;
        if (!is_idx && !is_w) {
            // A margin is a difference of probabilities: scale its error by the layer's largest
            // probability, not by the largest margin (tiny at 0.02 init, ~0.009).
            double e = max_norm_err(g, ref);
            if (name.rfind("routing_margin.", 0) == 0) {
                auto probs = golden.find("router_probs." + name.substr(name.find('.') + 1));
                if (probs != golden.end()) {
                    double pmax = 1e-300, d = 0;
                    for (double p : probs->second)
                        pmax = std::max(pmax, std::abs(p));
                    for (size_t i = 0; i < ref.size(); ++i)
                        d = std::max(d, std::abs(g[i] - ref[i]));
                    e = std::isnan(d) ? INFINITY : d / pmax;
                }
            }
            if (e > c.worst) {
                c.worst = e;
                c.worst_name = name;
            }
            if (!(e <= tol)) c.failures.push_back(name + ": error " + std::to_string(e));
            continue;
        }
        // Top-k: per row, as sets (idx) or matched by expert id (weights).
        const std::string layer = name.substr(name.find('.') + 1);
        const auto& margin = golden.at("routing_margin." + layer);
        const auto& ridx = golden.at("topk_idx." + layer);
        const auto& gidx = got.at("topk_idx." + layer);
        const size_t rows = margin.size(), K = ref.size() / rows;
        double d = 0, mx = 1e-300;
        for (size_t r = 0; r < rows; ++r) {
            if (margin[r] < margin_threshold) {
                if (is_idx) ++c.exempt_rows;
                continue;
            }
            std::vector<std::pair<double, double>> a(K), b(K);
            for (size_t j = 0; j < K; ++j) {
                a[j] = {gidx[r * K + j], g[r * K + j]};
                b[j] = {ridx[r * K + j], ref[r * K + j]};
            }
            std::sort(a.begin(), a.end());
            std::sort(b.begin(), b.end());
            for (size_t j = 0; j < K; ++j) {
                if (is_idx && a[j].first != b[j].first) {
                    ++c.topk_mismatches;
                    c.failures.push_back(name + ": row " + std::to_string(r) +
                                         " top-k set differs");
                    break;
                }
                if (is_w && a[j].first == b[j].first) {
                    d = std::max(d, std::abs(a[j].second - b[j].second));
                    mx = std::max(mx, std::abs(b[j].second));
                }
            }
        }
        if (is_w && !(d / mx <= tol))
            c.failures.push_back(name + ": error " + std::to_string(d / mx));
    }
    return c;
}

}  // namespace polymoe::testing
