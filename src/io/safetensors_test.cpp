// Tests of the safetensors reader and writer: round trips of every dtype, files assembled byte by
// byte from the format spec (so the reader is checked against the spec, not only against our
// writer), and one negative test per validation rule, each checking that the error names the
// file and the offending tensor.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/io_test_util.h"

namespace polymoe::io {
namespace {

using testing_util::read_bytes;
using testing_util::TempDir;
using testing_util::throws_error_with;
using testing_util::write_bytes;

std::string le64(uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i)
        s[i] = static_cast<char>(v >> (8 * i));
    return s;
}

// A safetensors file from a header JSON text and a data section, as the spec lays it out.
std::string raw_file(const std::string& header, const std::string& data) {
    return le64(header.size()) + header + data;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Deterministic, non-trivial bytes.
std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<uint8_t>(seed + 31 * i + (i >> 3));
    return v;
}

// Two F32 tensors a [2] and b [3] written by our writer (used by the corruption tests).
std::string write_two_tensors(const TempDir& tmp) {
    const std::vector<float> a = {1, 2}, b = {3, 4, 5};
    std::string path = tmp.path("two.safetensors");
    write_safetensors(path, {{"a", DType::F32, {2}, a.data()}, {"b", DType::F32, {3}, b.data()}});
    return path;
}

TEST(Safetensors, RoundTripsEveryDtype) {
    TempDir tmp;
    struct Case {
        std::string name;
        DType dtype;
        std::vector<int64_t> shape;
    };
    const std::vector<Case> cases = {
        {"f64", DType::F64, {2, 3}},      {"f32", DType::F32, {4}},   {"bf16", DType::BF16, {3, 2}},
        {"f16", DType::F16, {5}},         {"i64", DType::I64, {2}},   {"i32", DType::I32, {2, 2}},
        {"u8", DType::U8, {7}},           {"scalar", DType::F32, {}}, {"empty", DType::F32, {0, 3}},
        {"u8.odd", DType::U8, {1, 3, 1}},
    };
    std::vector<std::vector<uint8_t>> buffers;
    std::vector<TensorToWrite> tensors;
    for (size_t i = 0; i < cases.size(); ++i) {
        int64_t n = dtype_size(cases[i].dtype);
        for (int64_t d : cases[i].shape)
            n *= d;
        buffers.push_back(pattern(static_cast<size_t>(n), static_cast<uint8_t>(i)));
        tensors.push_back({cases[i].name, cases[i].dtype, cases[i].shape,
                           n > 0 ? buffers.back().data() : nullptr});
    }
    const std::string path = tmp.path("all.safetensors");
    write_safetensors(path, tensors);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

    SafetensorsFile f = SafetensorsFile::open(path);
    EXPECT_EQ(f.path(), path);
    ASSERT_EQ(f.tensors().size(), cases.size());
    EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    for (size_t i = 0; i < cases.size(); ++i) {
        const TensorInfo* t = f.find(cases[i].name);
        ASSERT_NE(t, nullptr) << cases[i].name;
        EXPECT_EQ(t->dtype, cases[i].dtype) << cases[i].name;
        EXPECT_EQ(t->shape, cases[i].shape) << cases[i].name;
        EXPECT_EQ(t->end - t->begin, static_cast<int64_t>(buffers[i].size())) << cases[i].name;
        EXPECT_EQ(t->numel() * dtype_size(t->dtype), t->end - t->begin) << cases[i].name;
        if (!buffers[i].empty()) {
            EXPECT_EQ(std::memcmp(f.data(*t), buffers[i].data(), buffers[i].size()), 0)
                << cases[i].name;
        }
    }
    // Tensors come back in data-offset order, which is the order written.
    for (size_t i = 0; i < cases.size(); ++i)
        EXPECT_EQ(f.tensors()[i].name, cases[i].name);
    EXPECT_EQ(f.find("absent"), nullptr);
}

TEST(Safetensors, Bf16DataEquality) {
    TempDir tmp;
    const std::vector<float> values = {1.0f, -2.5f, 3.14159f, 1e-30f, -0.0f, 65504.0f, 1e30f};
    std::vector<bf16_t> bf(values.size());
    for (size_t i = 0; i < values.size(); ++i)
        bf[i] = f32_to_bf16(values[i]);
    const std::string path = tmp.path("bf16.safetensors");
    write_safetensors(path, {{"w", DType::BF16, {static_cast<int64_t>(bf.size())}, bf.data()}});

    SafetensorsFile f = SafetensorsFile::open(path);
    const TensorInfo* t = f.find("w");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->dtype, DType::BF16);
    ASSERT_EQ(t->numel(), static_cast<int64_t>(bf.size()));
    std::vector<bf16_t> back(bf.size());
    std::memcpy(back.data(), f.data(*t), back.size() * sizeof(bf16_t));
    EXPECT_EQ(back, bf);
    std::vector<float> as_f32(bf.size());
    convert_to_f32(as_f32.data(), f.data(*t), DType::BF16, t->numel());
    for (size_t i = 0; i < bf.size(); ++i)
        EXPECT_EQ(as_f32[i], bf16_to_f32(bf[i])) << i;
    EXPECT_EQ(as_f32[0], 1.0f);
    EXPECT_EQ(as_f32[1], -2.5f);
}

TEST(Safetensors, ReadsHandBuiltFile) {
    // Keys in the header are neither sorted by name nor by offset; the header is padded with
    // spaces to 8 bytes as the Python/Rust writers do.
    TempDir tmp;
    std::string header = R"({"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                         R"("__metadata__":{"format":"pt","note":"hand-built"},)"
                         R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("c":{"dtype":"BF16","shape":[1,2],"data_offsets":[16,20]},)"
                         R"("z":{"dtype":"F16","shape":[0],"data_offsets":[20,20]}})";
    header.append((8 - (8 + header.size()) % 8) % 8, ' ');
    const std::vector<float> a = {1.5f, -2.0f};
    const std::vector<int64_t> b = {-7};
    const std::vector<uint16_t> c = {0x3fc0, 0xc000};  // bf16 1.5, -2.0
    const std::string path = tmp.path("hand.safetensors");
    write_bytes(path, raw_file(header, bytes_of(a) + bytes_of(b) + bytes_of(c)));

    SafetensorsFile f = SafetensorsFile::open(path);
    ASSERT_EQ(f.tensors().size(), 4u);
    EXPECT_EQ(f.tensors()[0].name, "a");
    EXPECT_EQ(f.tensors()[1].name, "b");
    EXPECT_EQ(f.tensors()[2].name, "c");
    EXPECT_EQ(f.tensors()[3].name, "z");
    EXPECT_EQ(f.metadata().at("note"), "hand-built");
    float av[2];
    std::memcpy(av, f.data(*f.find("a")), sizeof(av));
    EXPECT_EQ(av[0], 1.5f);
    EXPECT_EQ(av[1], -2.0f);
    int64_t bv;
    std::memcpy(&bv, f.data(*f.find("b")), sizeof(bv));
    EXPECT_EQ(bv, -7);
    const TensorInfo* ct = f.find("c");
    EXPECT_EQ(ct->shape, (std::vector<int64_t>{1, 2}));
    float cv[2];
    convert_to_f32(cv, f.data(*ct), ct->dtype, ct->numel());
    EXPECT_EQ(cv[0], 1.5f);
    EXPECT_EQ(cv[1], -2.0f);
    EXPECT_EQ(f.find("z")->numel(), 0);
    EXPECT_EQ(f.find("z")->dtype, DType::F16);
}

TEST(Safetensors, WriterLayoutFollowsSpec) {
    TempDir tmp;
    const std::vector<float> x = {1, 2, 3};
    const std::vector<uint8_t> y = {9};
    const std::string path = tmp.path("layout.safetensors");
    write_safetensors(path, {{"x", DType::F32, {3}, x.data()}, {"y", DType::U8, {1}, y.data()}});
    const std::string raw = read_bytes(path);
    ASSERT_GE(raw.size(), 8u);
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i)
        n |= static_cast<uint64_t>(static_cast<uint8_t>(raw[i])) << (8 * i);
    EXPECT_EQ((8 + n) % 8, 0u);
    ASSERT_EQ(raw.size(), 8 + n + 13);
    const std::string header = raw.substr(8, n);
    EXPECT_EQ(header.front(), '{');
    EXPECT_EQ(header.find_last_not_of(' '), header.find_last_of('}'));  // padded with spaces only
    auto j = nlohmann::json::parse(header);
    EXPECT_EQ(j["__metadata__"], nlohmann::json({{"format", "pt"}}));
    EXPECT_EQ(j["x"]["dtype"], "F32");
    EXPECT_EQ(j["x"]["shape"], nlohmann::json({3}));
    EXPECT_EQ(j["x"]["data_offsets"], nlohmann::json({0, 12}));
    EXPECT_EQ(j["y"]["dtype"], "U8");
    EXPECT_EQ(j["y"]["data_offsets"], nlohmann::json({12, 13}));
    EXPECT_EQ(std::memcmp(raw.data() + 8 + n, x.data(), 12), 0);
    EXPECT_EQ(static_cast<uint8_t>(raw.back()), 9);
}

TEST(Safetensors, CustomAndEmptyMetadata) {
    TempDir tmp;
    const std::string path = tmp.path("meta.safetensors");
    write_safetensors(path, {}, {{"format", "pt"}, {"step", "12"}});
    EXPECT_EQ(SafetensorsFile::open(path).metadata().at("step"), "12");
    write_safetensors(path, {}, {});
    SafetensorsFile f = SafetensorsFile::open(path);
    EXPECT_TRUE(f.metadata().empty());
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(nlohmann::json::parse(read_bytes(path).substr(8)), nlohmann::json::object());
}

TEST(Safetensors, AcceptsZeroSizeTensorsSharingOffsets) {
    TempDir tmp;
    const std::string path = tmp.path("zero.safetensors");
    const std::string header = R"({"e1":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                               R"("w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                               R"("e2":{"dtype":"I32","shape":[3,0],"data_offsets":[2,2]},)"
                               R"("e3":{"dtype":"I32","shape":[0],"data_offsets":[2,2]}})";
    write_bytes(path, raw_file(header, "ab"));
    SafetensorsFile f = SafetensorsFile::open(path);
    ASSERT_EQ(f.tensors().size(), 4u);
    EXPECT_EQ(f.tensors()[0].name, "e1");
    EXPECT_EQ(f.tensors()[1].name, "w");
    EXPECT_EQ(std::memcmp(f.data(*f.find("w")), "ab", 2), 0);
}

TEST(Safetensors, MoveKeepsMapping) {
    TempDir tmp;
    const std::string path = write_two_tensors(tmp);
    SafetensorsFile f = SafetensorsFile::open(path);
    const void* p = f.data(*f.find("b"));
    SafetensorsFile g(std::move(f));
    EXPECT_EQ(g.data(*g.find("b")), p);
    SafetensorsFile h;
    h = std::move(g);
    EXPECT_EQ(h.data(*h.find("b")), p);
    float b0;
    std::memcpy(&b0, h.data(*h.find("b")), 4);
    EXPECT_EQ(b0, 3.0f);
    h = SafetensorsFile::open(path);  // replaces (and unmaps) the old mapping
    EXPECT_EQ(h.tensors().size(), 2u);
}

TEST(Safetensors, ShapeStr) {
    EXPECT_EQ(shape_str({}), "[]");
    EXPECT_EQ(shape_str({2, 3}), "[2, 3]");
}

// ---- reader: negative cases -------------------------------------------------------------

TEST(Safetensors, RejectsMissingFile) {
    TempDir tmp;
    const std::string path = tmp.path("nope.safetensors");
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {"[safetensors]", path, "No such file or directory"}));
}

TEST(Safetensors, RejectsDirectory) {
    TempDir tmp;
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(tmp.path()); },
                                  {tmp.path(), "regular file"}));
}

TEST(Safetensors, RejectsEmptyFile) {
    TempDir tmp;
    const std::string path = tmp.path("empty.safetensors");
    write_bytes(path, "");
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "expected at least 8 bytes", "found 0"}));
}

TEST(Safetensors, RejectsFileShorterThanLengthPrefix) {
    TempDir tmp;
    const std::string path = tmp.path("short.safetensors");
    write_bytes(path, std::string("\x10\0\0\0\0", 5));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "expected at least 8 bytes", "found 5"}));
}

TEST(Safetensors, RejectsTruncatedFile) {
    TempDir tmp;
    const std::string path = write_two_tensors(tmp);
    std::string raw = read_bytes(path);
    write_bytes(path, raw.substr(0, raw.size() - 4));
    EXPECT_TRUE(throws_error_with(
        [&] { SafetensorsFile::open(path); },
        {path, "tensor 'b'", "data_offsets end", "expected at most 16", "found 20"}));
}

TEST(Safetensors, RejectsHeaderLengthLargerThanFile) {
    TempDir tmp;
    const std::string path = tmp.path("len.safetensors");
    write_bytes(path, le64(1000) + R"({"a":1})");
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "header length", "expected at most 7", "found 1000"}));
    write_bytes(path, le64(~uint64_t{0}) + "{}");  // would overflow a naive 8 + n check
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); }, {path, "header length"}));
}

// Issue 12: a header above the format's 100 MB cap is refused before it is parsed. The file is
// sparse (ftruncate), so the test writes a few bytes, not 100 MB.
TEST(Safetensors, RejectsHeaderAboveCap) {
    TempDir tmp;
    const std::string path = tmp.path("huge_header.safetensors");
    const uint64_t n = 100'000'001;
    write_bytes(path, le64(n) + "{");
    std::filesystem::resize_file(path, 8 + n);
    EXPECT_TRUE(throws_error_with(
        [&] { SafetensorsFile::open(path); },
        {path, "header length", "expected at most 100000000 bytes", "found 100000001"}));
}

TEST(Safetensors, RejectsCorruptedJson) {
    TempDir tmp;
    const std::string path = write_two_tensors(tmp);
    std::string raw = read_bytes(path);
    raw[raw.find(':', 8)] = ';';  // inside the header
    write_bytes(path, raw);
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "header JSON", "expected valid JSON"}));
    write_bytes(path, raw_file("", ""));
    EXPECT_TRUE(
        throws_error_with([&] { SafetensorsFile::open(path); }, {path, "expected valid JSON"}));
}

TEST(Safetensors, RejectsNonObjectHeader) {
    TempDir tmp;
    const std::string path = tmp.path("arr.safetensors");
    write_bytes(path, raw_file("[1, 2]", ""));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "expected an object", "[1,2]"}));
}

TEST(Safetensors, RejectsUnknownDtype) {
    TempDir tmp;
    const std::string path = tmp.path("dtype.safetensors");
    write_bytes(path,
                raw_file(R"({"w.q":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "xx"));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "tensor 'w.q'", "dtype", "F8_E4M3", "BF16"}));
}

TEST(Safetensors, RejectsMissingOrMalformedFields) {
    TempDir tmp;
    const std::string path = tmp.path("fields.safetensors");
    const std::pair<std::string, std::string> cases[] = {
        {R"({"t":{"shape":[1],"data_offsets":[0,4]}})", "dtype"},
        {R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", "shape"},
        {R"({"t":{"dtype":"F32","shape":[1]}})", "data_offsets"},
        {R"({"t":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", "shape"},
        {R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "data_offsets"},
        {R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,-4]}})", "data_offsets"},
        {R"({"t":[1,2]})", "expected an object"},
    };
    for (const auto& [header, what] : cases) {
        write_bytes(path, raw_file(header, "abcd"));
        EXPECT_TRUE(
            throws_error_with([&] { SafetensorsFile::open(path); }, {path, "tensor 't'", what}))
            << header;
    }
}

TEST(Safetensors, RejectsNegativeShape) {
    TempDir tmp;
    const std::string path = tmp.path("neg.safetensors");
    write_bytes(path,
                raw_file(R"({"n":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "tensor 'n'", "shape", "non-negative", "[-1]"}));
}

TEST(Safetensors, RejectsShapeOffsetMismatch) {
    TempDir tmp;
    const std::string path = tmp.path("mismatch.safetensors");
    write_bytes(path, raw_file(R"({"m":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})",
                               std::string(12, 'x')));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "tensor 'm'", "expected 16", "[2, 2]", "found 12"}));
}

TEST(Safetensors, RejectsShapeOverflow) {
    TempDir tmp;
    const std::string path = tmp.path("overflow.safetensors");
    write_bytes(path, raw_file(R"({"o":{"dtype":"F64","shape":[4294967296,4294967296],)"
                               R"("data_offsets":[0,0]}})",
                               ""));
    EXPECT_TRUE(
        throws_error_with([&] { SafetensorsFile::open(path); }, {path, "tensor 'o'", "overflow"}));
}

TEST(Safetensors, RejectsBeginAfterEnd) {
    TempDir tmp;
    const std::string path = tmp.path("order.safetensors");
    write_bytes(path, raw_file(R"({"r":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", "abcd"));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "tensor 'r'", "begin <= end", "[4, 0]"}));
}

TEST(Safetensors, RejectsOverlappingOffsets) {
    TempDir tmp;
    const std::string path = tmp.path("overlap.safetensors");
    write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                               std::string(12, 'x')));
    EXPECT_TRUE(
        throws_error_with([&] { SafetensorsFile::open(path); },
                          {path, "tensor 'b'", "expected 8", "tensor 'a'", "found 4", "overlap"}));
    // Two tensors on the same bytes.
    write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                               std::string(8, 'x')));
    EXPECT_TRUE(
        throws_error_with([&] { SafetensorsFile::open(path); }, {path, "tensor 'b'", "overlap"}));
}

TEST(Safetensors, RejectsGapBetweenTensors) {
    TempDir tmp;
    const std::string path = tmp.path("gap.safetensors");
    write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                               std::string(12, 'x')));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "tensor 'b'", "expected 4", "found 8", "gap of 4"}));
}

TEST(Safetensors, RejectsGapAtStart) {
    TempDir tmp;
    const std::string path = tmp.path("start.safetensors");
    write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                               std::string(8, 'x')));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "tensor 'a'", "expected 0", "start of the data section"}));
}

TEST(Safetensors, RejectsTrailingBytes) {
    TempDir tmp;
    const std::string path = write_two_tensors(tmp);
    write_bytes(path, read_bytes(path) + "junk");
    EXPECT_TRUE(throws_error_with(
        [&] { SafetensorsFile::open(path); },
        {path, "data section size", "expected 20", "found 24", "4 trailing bytes"}));
}

TEST(Safetensors, RejectsBadMetadata) {
    TempDir tmp;
    const std::string path = tmp.path("meta.safetensors");
    write_bytes(path, raw_file(R"({"__metadata__":{"format":"pt","step":3}})", ""));
    EXPECT_TRUE(throws_error_with([&] { SafetensorsFile::open(path); },
                                  {path, "__metadata__", "map of string to string"}));
}

TEST(Safetensors, RejectsDuplicateTensorInHeader) {
    TempDir tmp;
    const std::string path = tmp.path("dup.safetensors");
    write_bytes(path, raw_file(R"({"d":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                               R"("d":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                               "ab"));
    EXPECT_TRUE(
        throws_error_with([&] { SafetensorsFile::open(path); }, {path, "tensor 'd'", "twice"}));
}

// ---- writer: negative cases -------------------------------------------------------------

TEST(Safetensors, WriterRejectsDuplicateNames) {
    TempDir tmp;
    const std::string path = tmp.path("dup.safetensors");
    const float x = 1;
    EXPECT_TRUE(throws_error_with(
        [&] {
            write_safetensors(path, {{"w", DType::F32, {1}, &x}, {"w", DType::F32, {1}, &x}});
        },
        {path, "tensor 'w'", "unique"}));
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Safetensors, WriterRejectsNullDataAndBadNames) {
    TempDir tmp;
    const std::string path = tmp.path("null.safetensors");
    EXPECT_TRUE(throws_error_with(
        [&] {
            write_safetensors(path, {{"w", DType::F32, {2}, nullptr}});
        },
        {path, "tensor 'w'", "null"}));
    // Zero-size tensors need no data.
    write_safetensors(path, {{"w", DType::F32, {0}, nullptr}});
    EXPECT_EQ(SafetensorsFile::open(path).find("w")->numel(), 0);
    const float x = 1;
    EXPECT_TRUE(throws_error_with(
        [&] {
            write_safetensors(path, {{"__metadata__", DType::F32, {1}, &x}});
        },
        {path, "__metadata__"}));
    EXPECT_TRUE(throws_error_with(
        [&] {
            write_safetensors(path, {{"n", DType::F32, {-1}, &x}});
        },
        {path, "tensor 'n'", "[-1]"}));
}

TEST(Safetensors, WriterReportsUnwritablePath) {
    TempDir tmp;
    const std::string path = tmp.path("no/such/dir/x.safetensors");
    EXPECT_TRUE(throws_error_with([&] { write_safetensors(path, {}); },
                                  {path, "No such file or directory"}));
}

}  // namespace
}  // namespace polymoe::io
