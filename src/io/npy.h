// NumPy .npy files (format version 1.0/2.0/3.0, little-endian, C order): read int and float
// arrays of any common dtype, write int32/int64/float32/float64. Used for token inputs, masks and
// small exports. Fortran order, big-endian and object arrays are rejected with a clear error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace polymoe::io {

struct NpyArray {
    std::string descr;  // e.g. "<i4", "<f8", "|u1"
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;  // raw little-endian data
    int64_t numel() const;
    bool is_integer() const;
    // Element i converted (range-checked for integers by the caller).
    int64_t get_int(int64_t i) const;
    double get_double(int64_t i) const;
};

NpyArray read_npy(const std::string& path);
// descr one of "<i4", "<i8", "<f4", "<f8".
void write_npy(const std::string& path,
               const std::string& descr,
               const std::vector<int64_t>& shape,
               const void* data);

}  // namespace polymoe::io
