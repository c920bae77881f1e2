// Tests of the .npy reader and writer: round trips of the writable dtypes, the exact header our
// writer produces (64-byte aligned, ending in '\n', as NumPy writes it), files assembled by hand
// in versions 1.0/2.0/3.0 with every readable dtype, and the rejected cases (Fortran order,
// object and structured dtypes, size mismatches), each naming the file; big-endian data is swapped.
#include "io/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/io_test_util.h"

namespace polymoe::io {
namespace {

using testing_util::read_bytes;
using testing_util::TempDir;
using testing_util::throws_error_with;
using testing_util::write_bytes;

// A .npy file of the given version from a header dict text and raw data, padded as NumPy does.
std::string npy_file(int major, const std::string& dict, const std::string& data) {
    const size_t prefix = major == 1 ? 10 : 12;
    std::string header = dict;
    header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    for (size_t i = 0; i < prefix - 8; ++i)
        out += static_cast<char>(header.size() >> (8 * i));
    return out + header + data;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(Npy, RoundTripsWritableDtypes) {
    TempDir tmp;
    const std::vector<int32_t> i4 = {1, -2, 3, 2147483647, -2147483647 - 1, 0};
    const std::vector<int64_t> i8 = {50279, -1, int64_t{1} << 40, 7, 8};
    const std::vector<float> f4 = {0.25f};
    const std::vector<double> f8 = {};

    write_npy(tmp.path("i4.npy"), "<i4", {2, 3}, i4.data());
    NpyArray a = read_npy(tmp.path("i4.npy"));
    EXPECT_EQ(a.descr, "<i4");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_TRUE(a.is_integer());
    ASSERT_EQ(a.numel(), 6);
    for (int64_t i = 0; i < 6; ++i)
        EXPECT_EQ(a.get_int(i), i4[i]);
    EXPECT_EQ(a.get_double(1), -2.0);
    EXPECT_EQ(a.bytes.size(), 24u);

    write_npy(tmp.path("i8.npy"), "<i8", {5}, i8.data());
    a = read_npy(tmp.path("i8.npy"));
    EXPECT_EQ(a.descr, "<i8");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{5}));
    for (int64_t i = 0; i < 5; ++i)
        EXPECT_EQ(a.get_int(i), i8[i]);

    write_npy(tmp.path("f4.npy"), "<f4", {}, f4.data());
    a = read_npy(tmp.path("f4.npy"));
    EXPECT_EQ(a.descr, "<f4");
    EXPECT_TRUE(a.shape.empty());
    EXPECT_FALSE(a.is_integer());
    EXPECT_EQ(a.numel(), 1);
    EXPECT_EQ(a.get_double(0), 0.25);

    write_npy(tmp.path("f8.npy"), "<f8", {2, 0}, f8.data());
    a = read_npy(tmp.path("f8.npy"));
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 0}));
    EXPECT_EQ(a.numel(), 0);
    EXPECT_TRUE(a.bytes.empty());
    EXPECT_FALSE(std::filesystem::exists(tmp.path("f8.npy.tmp")));
}

TEST(Npy, WrittenHeaderMatchesNumpy) {
    TempDir tmp;
    const std::vector<int32_t> v = {1, 2, 3};
    write_npy(tmp.path("v.npy"), "<i4", {3}, v.data());
    const std::string raw = read_bytes(tmp.path("v.npy"));
    ASSERT_GE(raw.size(), 10u);
    EXPECT_EQ(raw.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const size_t hlen = static_cast<uint8_t>(raw[8]) | static_cast<uint8_t>(raw[9]) << 8;
    EXPECT_EQ((10 + hlen) % 64, 0u);
    const std::string header = raw.substr(10, hlen);
    // Exactly what numpy.save writes for np.array([1, 2, 3], dtype='<i4').
    const std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
    ASSERT_GT(hlen, dict.size());
    EXPECT_EQ(header, dict + std::string(hlen - dict.size() - 1, ' ') + "\n");
    ASSERT_EQ(raw.size(), 10 + hlen + 12);
    EXPECT_EQ(std::memcmp(raw.data() + 10 + hlen, v.data(), 12), 0);

    write_npy(tmp.path("m.npy"), "<f8", {2, 3}, std::vector<double>(6).data());
    EXPECT_NE(read_bytes(tmp.path("m.npy")).find("'shape': (2, 3), }"), std::string::npos);
}

TEST(Npy, ReadsHandBuiltV1Header) {
    TempDir tmp;
    const std::string path = tmp.path("hand.npy");
    const std::vector<int64_t> v = {10, -20, 30, 40};
    write_bytes(path, npy_file(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }",
                               bytes_of(v)));
    NpyArray a = read_npy(path);
    EXPECT_EQ(a.descr, "<i8");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
    for (int64_t i = 0; i < 4; ++i)
        EXPECT_EQ(a.get_int(i), v[i]);
}

TEST(Npy, ReadsEveryDtype) {
    TempDir tmp;
    const std::string path = tmp.path("dt.npy");
    auto load = [&](const std::string& descr, const std::string& data, int64_t n) {
        write_bytes(path, npy_file(1,
                                   "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" +
                                       std::to_string(n) + ",), }",
                                   data));
        return read_npy(path);
    };
    NpyArray a = load("|i1", bytes_of(std::vector<int8_t>{-128, 127}), 2);
    EXPECT_EQ(a.descr, "|i1");
    EXPECT_EQ(a.get_int(0), -128);
    EXPECT_EQ(a.get_int(1), 127);
    a = load("<i2", bytes_of(std::vector<int16_t>{-300}), 1);
    EXPECT_EQ(a.get_int(0), -300);
    a = load("|u1", bytes_of(std::vector<uint8_t>{255}), 1);
    EXPECT_EQ(a.get_int(0), 255);
    a = load("<u2", bytes_of(std::vector<uint16_t>{65535}), 1);
    EXPECT_EQ(a.get_int(0), 65535);
    a = load("<u4", bytes_of(std::vector<uint32_t>{4000000000u}), 1);
    EXPECT_EQ(a.get_int(0), 4000000000);
    a = load("<u8", bytes_of(std::vector<uint64_t>{5, ~uint64_t{0}}), 2);
    EXPECT_EQ(a.get_int(0), 5);
    EXPECT_EQ(a.get_double(1), 18446744073709551615.0);
    EXPECT_TRUE(throws_error_with([&] { a.get_int(1); }, {"element 1", "2^63"}));
    a = load("<f2", bytes_of(std::vector<uint16_t>{0x3c00, 0xc100}), 2);
    EXPECT_EQ(a.get_double(0), 1.0);
    EXPECT_EQ(a.get_double(1), -2.5);
    a = load("<f4", bytes_of(std::vector<float>{3.0f, 1.5f}), 2);
    EXPECT_EQ(a.get_int(0), 3);  // integral floats convert
    EXPECT_TRUE(throws_error_with([&] { a.get_int(1); }, {"element 1", "integer", "1.5"}));
    a = load("|b1", std::string("\x01\x00", 2), 2);
    EXPECT_TRUE(a.is_integer());
    EXPECT_EQ(a.get_int(0), 1);
    EXPECT_EQ(a.get_int(1), 0);
    a = load("<i1", bytes_of(std::vector<int8_t>{-1}), 1);  // '<' on a 1-byte type is fine
    EXPECT_EQ(a.descr, "|i1");
}

TEST(Npy, ReadsVersion2And3Headers) {
    TempDir tmp;
    const std::string path = tmp.path("v.npy");
    const std::vector<float> v = {1.5f, 2.5f, -3.5f};
    for (int major : {2, 3}) {
        write_bytes(path, npy_file(major,
                                   "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": "
                                   "(3L,)}",
                                   bytes_of(v)));
        NpyArray a = read_npy(path);
        EXPECT_EQ(a.shape, (std::vector<int64_t>{3})) << major;
        EXPECT_EQ(a.get_double(2), -3.5) << major;
    }
}

TEST(Npy, RejectsFortranOrder) {
    TempDir tmp;
    const std::string path = tmp.path("f.npy");
    write_bytes(path, npy_file(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                               std::string(48, '\0')));
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); },
                                  {"[npy]", path, "fortran_order", "expected False"}));
    // With at most one dimension above 1, Fortran and C order are the same layout.
    write_bytes(path, npy_file(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (1, 3), }",
                               std::string(24, '\0')));
    EXPECT_EQ(read_npy(path).numel(), 3);
}

TEST(Npy, ReadsBigEndianAndRejectsObjectAndStructuredDtypes) {
    TempDir tmp;
    const std::string path = tmp.path("bad.npy");
    // Big-endian data is swapped to little-endian on read (canonical descr '<i4').
    write_bytes(path, npy_file(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }",
                               std::string("\x01\x02\x03\x04", 4)));
    const NpyArray be = read_npy(path);
    EXPECT_EQ(be.descr, "<i4");
    EXPECT_EQ(be.get_int(0), 0x01020304);
    write_bytes(path, npy_file(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                               std::string(8, '\0')));
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, "object array"}));
    write_bytes(path,
                npy_file(1, "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }",
                         std::string(4, '\0')));
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, "structured"}));
    write_bytes(path, npy_file(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
                               std::string(8, '\0')));
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, "descr", "'<c8'"}));
    // Unicode arrays (NumPy '<U3': 3 UTF-32 code points per item) are read.
    write_bytes(path, npy_file(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }",
                               std::string("h\0\0\0\xe9\0\0\0\0\0\0\0", 12)));
    EXPECT_EQ(read_npy(path).get_string(0), "h\xc3\xa9");
}

TEST(Npy, RejectsDataSizeMismatch) {
    TempDir tmp;
    const std::string path = tmp.path("size.npy");
    const std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }";
    write_bytes(path, npy_file(1, dict, std::string(12, '\0')));
    EXPECT_TRUE(
        throws_error_with([&] { read_npy(path); }, {path, "data size", "expected 16", "found 12"}));
    write_bytes(path, npy_file(1, dict, std::string(20, '\0')));
    EXPECT_TRUE(
        throws_error_with([&] { read_npy(path); }, {path, "data size", "expected 16", "found 20"}));
}

TEST(Npy, RejectsMalformedFiles) {
    TempDir tmp;
    const std::string path = tmp.path("m.npy");
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, "No such file or directory"}));
    write_bytes(path, "PK\x03\x04 this is a zip");
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, "magic"}));
    write_bytes(path, "\x93NUMPY");
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, "magic"}));
    std::string f = npy_file(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }",
                             std::string(4, '\0'));
    f[6] = 4;
    write_bytes(path, f);
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, "version", "found 4.0"}));
    f[6] = 1;
    f[8] = '\xff';
    f[9] = '\x7f';
    write_bytes(path, f);
    EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, "header length"}));
    const std::pair<std::string, std::string> headers[] = {
        {"{'descr': '<i4', 'shape': (1,), }", "fortran_order missing"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "'x'"},
        {"{'descr': '<i4', 'fortran_order': Maybe, 'shape': (1,), }", "True or False"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (-1,), }", "non-negative"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,) ", "',' or '}'"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,), } x", "end of the header"},
    };
    for (const auto& [dict, what] : headers) {
        write_bytes(path, npy_file(1, dict, std::string(4, '\0')));
        EXPECT_TRUE(throws_error_with([&] { read_npy(path); }, {path, what})) << dict;
    }
}

TEST(Npy, WriteRejectsUnsupportedInput) {
    TempDir tmp;
    const std::string path = tmp.path("w.npy");
    const int16_t x = 1;
    EXPECT_TRUE(throws_error_with([&] { write_npy(path, "<i2", {1}, &x); }, {path, "'<i2'"}));
    EXPECT_TRUE(throws_error_with([&] { write_npy(path, "<i4", {2}, nullptr); }, {path, "null"}));
    EXPECT_TRUE(throws_error_with([&] { write_npy(path, "<i4", {-2}, &x); }, {path, "(-2,)"}));
    EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace polymoe::io
