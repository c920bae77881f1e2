// dtype names and bulk conversions (see dtype.h).
#include "core/dtype.h"

#include "core/check.h"

namespace polymoe {

namespace {
struct Named {
    DType t;
    std::string_view name;
};
constexpr Named kNames[] = {{DType::F64, "F64"}, {DType::F32, "F32"}, {DType::BF16, "BF16"},
                            {DType::F16, "F16"}, {DType::I64, "I64"}, {DType::I32, "I32"},
                            {DType::U8, "U8"}};
}  // namespace

std::string_view dtype_name(DType t) {
    for (const auto& n : kNames)
        if (n.t == t) return n.name;
    return "?";
}

bool parse_dtype(std::string_view name, DType* out) {
    for (const auto& n : kNames) {
        if (n.name == name) {
            *out = n.t;
            return true;
        }
    }
    return false;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else {  // subnormal: renormalise
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while ((mant & 0x400u) == 0);
            u = sign | ((127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

void convert_to_f32(float* dst, const void* src, DType t, int64_t n) {
    switch (t) {
        case DType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case DType::BF16: {
            const auto* s = static_cast<const bf16_t*>(src);
            for (int64_t i = 0; i < n; ++i)
                dst[i] = bf16_to_f32(s[i]);
            return;
        }
        case DType::F16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i)
                dst[i] = f16_to_f32(s[i]);
            return;
        }
        case DType::F64: {
            const auto* s = static_cast<const double*>(src);
            for (int64_t i = 0; i < n; ++i)
                dst[i] = static_cast<float>(s[i]);
            return;
        }
        case DType::I64: {
            const auto* s = static_cast<const int64_t*>(src);
            for (int64_t i = 0; i < n; ++i)
                dst[i] = static_cast<float>(s[i]);
            return;
        }
        case DType::I32: {
            const auto* s = static_cast<const int32_t*>(src);
            for (int64_t i = 0; i < n; ++i)
                dst[i] = static_cast<float>(s[i]);
            return;
        }
        case DType::U8: {
            const auto* s = static_cast<const uint8_t*>(src);
            for (int64_t i = 0; i < n; ++i)
                dst[i] = static_cast<float>(s[i]);
            return;
        }
    }
}

void convert_from_f32(void* dst, DType t, const float* src, int64_t n) {
    switch (t) {
        case DType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case DType::BF16: {
            auto* d = static_cast<bf16_t*>(dst);
            for (int64_t i = 0; i < n; ++i)
                d[i] = f32_to_bf16(src[i]);
            return;
        }
        case DType::F64: {
            auto* d = static_cast<double*>(dst);
            for (int64_t i = 0; i < n; ++i)
                d[i] = src[i];
            return;
        }
        default:
            POLYMOE_CHECK(false, "convert_from_f32: unsupported dtype {}", dtype_name(t));
    }
}

}  // namespace polymoe
