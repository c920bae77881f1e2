// Element types of tensors on disk and in memory, and the bf16/f16 <-> f32 conversions.
// f32 -> bf16 rounds to nearest, ties to even (as torch's .to(torch.bfloat16)); NaN stays a
// quiet NaN. bf16 -> f32 is exact (a 16-bit shift). f16 is only read (safetensors F16).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace polymoe {

enum class DType : uint8_t { F64, F32, BF16, F16, I64, I32, U8 };

// Size in bytes of one element.
inline int64_t dtype_size(DType t) {
    switch (t) {
        case DType::F64:
        case DType::I64:
            return 8;
        case DType::F32:
        case DType::I32:
            return 4;
        case DType::BF16:
        case DType::F16:
            return 2;
        case DType::U8:
            return 1;
    }
    return 0;
}

// Names as in safetensors headers ("F32", "BF16", ...).
std::string_view dtype_name(DType t);
// Parses a safetensors dtype name; returns false if unknown.
bool parse_dtype(std::string_view name, DType* out);

using bf16_t = uint16_t;

inline float bf16_to_f32(bf16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline bf16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 0x0040u);  // NaN
    // Round to nearest even: add 0x7fff plus the lowest kept bit, then truncate.
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<bf16_t>(u >> 16);
}

// IEEE half -> float, exact (subnormals, inf and NaN included).
float f16_to_f32(uint16_t h);

// Converts n elements of type `t` at `src` to float (F64 is rounded, integers converted).
void convert_to_f32(float* dst, const void* src, DType t, int64_t n);
// Converts n floats to type t (F32, BF16 or F64) at dst.
void convert_from_f32(void* dst, DType t, const float* src, int64_t n);

}  // namespace polymoe
