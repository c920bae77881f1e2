// NumPy .npy files (format version 1.0/2.0/3.0, C order): read bool, int, float and unicode
// ('<U..') arrays of any common dtype in either byte order (big-endian data is swapped to
// little-endian on read), write numeric, bool and unicode arrays. Used for token inputs, masks,
// small exports and the members of .npz archives (io/npz.h). Fortran order, object arrays
// (pickles) and structured dtypes are rejected with a clear error naming the origin.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace polymoe::io {

struct NpyArray {
    std::string descr;  // canonical little-endian form: "<i4", "<f8", "|u1", "|b1", "<U7"
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;  // raw little-endian data
    int64_t numel() const;
    bool is_integer() const;  // signed, unsigned or bool
    bool is_float() const;
    bool is_unicode() const;
    int64_t item_size() const;
    // Element i converted (range-checked for integers by the caller).
    int64_t get_int(int64_t i) const;
    double get_double(int64_t i) const;
    // Element i of a unicode array as UTF-8 (trailing NULs dropped, as NumPy does).
    std::string get_string(int64_t i) const;
};

// What a .npy header says: the canonical descr, the shape, where the data starts in the file
// and how many bytes it has (the shape product times the item size, overflow-checked).
struct NpyHeader {
    std::string descr;
    std::vector<int64_t> shape;
    bool big_endian = false;  // the data is stored big-endian ('>' in the file)
    size_t data_offset = 0;
    int64_t data_bytes = 0;
};

// Largest header accepted (NumPy writes a few hundred bytes; version 2.0 allows 4 GiB).
inline constexpr size_t kMaxNpyHeaderBytes = size_t{1} << 20;

// Parses the magic, version and header dict at the start of `file` (which may hold only a
// prefix of the file, enough for the header). `origin` names the file (or archive member) in
// errors. Throws polymoe::Error.
NpyHeader parse_npy_header(std::string_view file, const std::string& origin);

// Swaps each item of a big-endian array to little-endian in place (items of descr's size).
void byteswap_items(uint8_t* data, int64_t bytes, const std::string& descr);

NpyArray read_npy(const std::string& path);

// The magic, version and padded header dict for an array of descr and shape (data follows).
std::string npy_header_bytes(const std::string& descr, const std::vector<int64_t>& shape);
// Bytes of the data of such an array, or -1 on overflow / a negative dimension.
int64_t npy_data_bytes(const std::string& descr, const std::vector<int64_t>& shape);

// descr one of "<i4", "<i8", "<f4", "<f8".
void write_npy(const std::string& path,
               const std::string& descr,
               const std::vector<int64_t>& shape,
               const void* data);

}  // namespace polymoe::io
