// NumPy .npy reader and writer (see npy.h). The header is a Python dict literal,
//   {'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }
// parsed here by a small recursive-descent reader that accepts exactly the three keys NumPy
// writes (numpy/lib/format.py). Layout: "\x93NUMPY", major, minor, header length (u16 LE for
// 1.0, u32 LE for 2.0/3.0), the header (padded with spaces, ending in '\n'), then the raw data.
#include "io/npy.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

#include "core/check.h"
#include "core/dtype.h"
#include "core/error.h"
#include "io/file_util.h"

namespace polymoe::io {

static_assert(std::endian::native == std::endian::little, "npy data is read as little-endian");

namespace {

constexpr std::string_view kComponent = "npy";
constexpr std::string_view kMagic = "\x93NUMPY";

// Reads the header dict; every error names the file and the position.
class HeaderParser {
public:
    HeaderParser(std::string_view text, const std::string& path) : s_(text), path_(path) {}

    void parse(std::string* descr, bool* fortran_order, std::vector<int64_t>* shape) {
        bool have_descr = false, have_fortran = false, have_shape = false;
        expect('{', "'{'");
        while (!consume('}')) {
            std::string key = parse_string();
            expect(':', "':'");
            skip_ws();
            if (key == "descr") {
                if (peek() == '[')
                    fail(kComponent,
                         "{}: descr: expected a simple dtype such as '<i4', found a "
                         "structured dtype",
                         path_);
                *descr = parse_string();
                have_descr = true;
            } else if (key == "fortran_order") {
                *fortran_order = parse_bool();
                have_fortran = true;
            } else if (key == "shape") {
                *shape = parse_shape();
                have_shape = true;
            } else {
                fail(kComponent,
                     "{}: header: expected the keys descr, fortran_order and shape, "
                     "found '{}'",
                     path_, key);
            }
            if (!consume(',')) {
                expect('}', "',' or '}'");
                break;
            }
        }
        skip_ws();
        if (pos_ != s_.size()) error("the end of the header (spaces and a newline)");
        if (!have_descr || !have_fortran || !have_shape)
            fail(kComponent,
                 "{}: header: expected the keys descr, fortran_order and shape, "
                 "found {} missing",
                 path_,
                 !have_descr     ? "descr"
                 : !have_fortran ? "fortran_order"
                                 : "shape");
    }

private:
    [[noreturn]] void error(std::string_view what) const {
        std::string_view rest = s_.substr(pos_, 20);
        fail(kComponent, "{}: header: expected {} at offset {}, found '{}'", path_, what, pos_,
             rest);
    }
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }
    char peek() {
        skip_ws();
        return pos_ < s_.size() ? s_[pos_] : '\0';
    }
    bool consume(char c) {
        if (peek() != c) return false;
        ++pos_;
        return true;
    }
    void expect(char c, std::string_view what) {
        if (!consume(c)) error(what);
    }
    std::string parse_string() {
        char q = peek();
        if (q != '\'' && q != '"') error("a quoted string");
        size_t end = s_.find(q, pos_ + 1);
        if (end == std::string_view::npos) error("a closing quote");
        std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
        pos_ = end + 1;
        return out;
    }
    bool parse_bool() {
        skip_ws();
        if (s_.substr(pos_, 4) == "True") {
            pos_ += 4;
            return true;
        }
        if (s_.substr(pos_, 5) == "False") {
            pos_ += 5;
            return false;
        }
        error("True or False");
    }
    int64_t parse_int() {
        skip_ws();
        int64_t v = 0;
        size_t start = pos_;
        while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[pos_] - '0', &v))
                error("a dimension below 2^63");
            ++pos_;
        }
        if (pos_ == start) error("a non-negative integer");
        if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 long literal, e.g. (3L,)
        return v;
    }
    // "()", "(3,)", "(2, 3)", "(2, 3,)".
    std::vector<int64_t> parse_shape() {
        std::vector<int64_t> shape;
        expect('(', "'(' (a shape tuple)");
        while (!consume(')')) {
            shape.push_back(parse_int());
            if (!consume(',')) {
                expect(')', "',' or ')'");
                break;
            }
        }
        return shape;
    }

    std::string_view s_;
    const std::string& path_;
    size_t pos_ = 0;
};

// Longest unicode string item accepted ('<U..', 4 bytes per character).
constexpr int64_t kMaxUnicodeChars = int64_t{1} << 20;

// Checks a descr from a file and returns it in canonical form ('|' for 1-byte types, '<'
// otherwise), e.g. "<i1" -> "|i1", "=f4" -> "<f4", ">U3" -> "<U3"; *big_endian tells whether the
// data is stored big-endian (then byteswap_items makes it little-endian).
std::string canonical_descr(const std::string& descr, const std::string& path, bool* big_endian) {
    std::string_view t = descr;
    const char order = t.empty() ? '\0' : t[0];
    if (order == '<' || order == '>' || order == '|' || order == '=') t.remove_prefix(1);
    if (!t.empty() && t[0] == 'O')
        fail(kComponent,
             "{}: descr: expected a numeric or unicode dtype, found an object array ('{}'; "
             "pickled Python objects are not read)",
             path, descr);
    if (t.size() >= 2 && t[0] == 'U') {
        int64_t n = 0;
        for (char ch : t.substr(1)) {
            if (ch < '0' || ch > '9' || n > kMaxUnicodeChars)
                fail(kComponent,
                     "{}: descr: expected a unicode dtype '<U<n>' with n <= {}, found '{}'", path,
                     kMaxUnicodeChars, descr);
            n = n * 10 + (ch - '0');
        }
        if (n < 1 || n > kMaxUnicodeChars)
            fail(kComponent,
                 "{}: descr: expected a unicode dtype '<U<n>' with 1 <= n <= {}, found '{}'", path,
                 kMaxUnicodeChars, descr);
        *big_endian = order == '>';
        return "<U" + std::to_string(n);
    }
    constexpr std::string_view kKnown[] = {"i1", "i2", "i4", "i8", "u1", "u2",
                                           "u4", "u8", "f2", "f4", "f8", "b1"};
    for (std::string_view k : kKnown) {
        if (t == k) {
            *big_endian = order == '>' && k[1] != '1';
            return (k[1] == '1' ? "|" : "<") + std::string(k);
        }
    }
    fail(kComponent,
         "{}: descr: expected one of i1 i2 i4 i8 u1 u2 u4 u8 f2 f4 f8 b1 U<n> (either byte "
         "order), found '{}'",
         path, descr);
}

// Bytes per item of a canonical descr.
int64_t item_size(const std::string& descr) {
    if (descr.size() >= 3 && descr[1] == 'U') return 4 * std::stoll(descr.substr(2));
    POLYMOE_CHECK(descr.size() == 3 && descr[2] >= '1' && descr[2] <= '8',
                  "npy: unsupported descr '{}'", descr);
    return descr[2] - '0';
}

template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

// prod(shape) * item, or -1 on overflow or a negative dimension.
int64_t byte_size(const std::vector<int64_t>& shape, int64_t item) {
    int64_t n = item;
    for (int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, d, &n)) return -1;
    }
    return n;
}

std::string shape_tuple(const std::vector<int64_t>& shape) {
    if (shape.size() == 1) return fmt::format("({},)", shape[0]);
    return fmt::format("({})", fmt::join(shape, ", "));
}

}  // namespace

int64_t NpyArray::numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

bool NpyArray::is_integer() const {
    return descr.size() >= 2 && (descr[1] == 'i' || descr[1] == 'u' || descr[1] == 'b');
}

bool NpyArray::is_float() const {
    return descr.size() >= 2 && descr[1] == 'f';
}

bool NpyArray::is_unicode() const {
    return descr.size() >= 2 && descr[1] == 'U';
}

int64_t NpyArray::item_size() const {
    return io::item_size(descr);
}

std::string NpyArray::get_string(int64_t i) const {
    POLYMOE_CHECK(is_unicode(), "npy: get_string on '{}'", descr);
    const int64_t size = item_size();
    POLYMOE_CHECK(i >= 0 && (i + 1) * size <= static_cast<int64_t>(bytes.size()),
                  "npy: element {} out of range", i);
    std::string out;
    for (int64_t c = 0; c < size / 4; ++c) {
        const uint32_t cp = load<uint32_t>(bytes.data() + i * size + 4 * c);
        if (cp == 0) break;  // NumPy pads with NULs (and strips them on access)
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x110000) {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            fail(kComponent, "element {}: expected a Unicode code point, found {:#x}", i, cp);
        }
    }
    return out;
}

int64_t NpyArray::get_int(int64_t i) const {
    const int64_t size = io::item_size(descr);
    POLYMOE_DCHECK(i >= 0 && (i + 1) * size <= static_cast<int64_t>(bytes.size()),
                   "npy: element {} out of range", i);
    const uint8_t* p = bytes.data() + i * size;
    switch (descr[1]) {
        case 'b':
            return p[0] != 0;
        case 'i':
            switch (size) {
                case 1:
                    return load<int8_t>(p);
                case 2:
                    return load<int16_t>(p);
                case 4:
                    return load<int32_t>(p);
                default:
                    return load<int64_t>(p);
            }
        case 'u': {
            uint64_t v = size == 1   ? load<uint8_t>(p)
                         : size == 2 ? load<uint16_t>(p)
                         : size == 4 ? load<uint32_t>(p)
                                     : load<uint64_t>(p);
            if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                fail(kComponent, "element {}: expected a value below 2^63, found {}", i, v);
            return static_cast<int64_t>(v);
        }
        default: {
            double d = get_double(i);
            if (!(d == std::trunc(d) && d >= -0x1p63 && d < 0x1p63))
                fail(kComponent, "element {}: expected an integer value, found {}", i, d);
            return static_cast<int64_t>(d);
        }
    }
}

double NpyArray::get_double(int64_t i) const {
    const int64_t size = io::item_size(descr);
    POLYMOE_DCHECK(i >= 0 && (i + 1) * size <= static_cast<int64_t>(bytes.size()),
                   "npy: element {} out of range", i);
    const uint8_t* p = bytes.data() + i * size;
    if (descr[1] == 'f') {
        switch (size) {
            case 2:
                return f16_to_f32(load<uint16_t>(p));
            case 4:
                return load<float>(p);
            default:
                return load<double>(p);
        }
    }
    if (descr[1] == 'u' && size == 8) return static_cast<double>(load<uint64_t>(p));
    return static_cast<double>(get_int(i));
}

NpyHeader parse_npy_header(std::string_view file, const std::string& path) {
    if (file.size() < 10 || file.substr(0, 6) != kMagic)
        fail(kComponent, "{}: magic: expected \\x93NUMPY (a .npy file), found {}", path,
             file.size() < 10 ? fmt::format("a file of {} bytes", file.size())
                              : std::string("other bytes"));
    const auto* u = reinterpret_cast<const uint8_t*>(file.data());
    const int major = u[6], minor = u[7];
    if (major < 1 || major > 3 || minor != 0)
        fail(kComponent, "{}: format version: expected 1.0, 2.0 or 3.0, found {}.{}", path, major,
             minor);
    size_t prefix = major == 1 ? 10 : 12;
    if (file.size() < prefix)
        fail(kComponent, "{}: header length: expected {} bytes of prefix, found a file of {} bytes",
             path, prefix, file.size());
    uint64_t header_len = major == 1 ? (u[8] | (u[9] << 8))
                                     : (uint64_t{u[8]} | uint64_t{u[9]} << 8 |
                                        uint64_t{u[10]} << 16 | uint64_t{u[11]} << 24);
    // Checked before anything is allocated for it.
    if (header_len > kMaxNpyHeaderBytes)
        fail(kComponent, "{}: header length: expected at most {} bytes, found {}", path,
             kMaxNpyHeaderBytes, header_len);
    if (header_len > file.size() - prefix)
        fail(kComponent,
             "{}: header length: expected at most {} (the file size minus {}), "
             "found {}",
             path, file.size() - prefix, prefix, header_len);

    NpyHeader h;
    bool fortran_order = false;
    std::string descr;
    HeaderParser(file.substr(prefix, header_len), path).parse(&descr, &fortran_order, &h.shape);
    h.descr = canonical_descr(descr, path, &h.big_endian);
    // Fortran and C order coincide when at most one dimension exceeds 1.
    int non_trivial = 0;
    for (int64_t d : h.shape)
        non_trivial += d > 1;
    if (fortran_order && non_trivial > 1)
        fail(kComponent,
             "{}: fortran_order: expected False (C order), found True (save "
             "np.ascontiguousarray(arr) instead)",
             path);
    h.data_bytes = byte_size(h.shape, item_size(h.descr));
    if (h.data_bytes < 0)
        fail(kComponent, "{}: shape {}: expected a byte size below 2^63, found an overflow", path,
             shape_tuple(h.shape));
    h.data_offset = prefix + header_len;
    return h;
}

void byteswap_items(uint8_t* data, int64_t bytes, const std::string& descr) {
    // Unicode items are arrays of 4-byte code points; numeric items swap as a whole.
    const int64_t w = descr.size() >= 2 && descr[1] == 'U' ? 4 : item_size(descr);
    if (w == 1) return;
    for (int64_t o = 0; o + w <= bytes; o += w)
        std::reverse(data + o, data + o + w);
}

NpyArray read_npy(const std::string& path) {
    const std::string file = detail::read_file(path, kComponent);
    const NpyHeader h = parse_npy_header(file, path);
    const size_t found = file.size() - h.data_offset;
    if (static_cast<uint64_t>(h.data_bytes) != found)
        fail(kComponent, "{}: data size: expected {} bytes (shape {} of '{}'), found {}", path,
             h.data_bytes, shape_tuple(h.shape), h.descr, found);
    NpyArray a;
    a.descr = h.descr;
    a.shape = h.shape;
    const auto* u = reinterpret_cast<const uint8_t*>(file.data());
    a.bytes.assign(u + h.data_offset, u + file.size());
    if (h.big_endian) byteswap_items(a.bytes.data(), h.data_bytes, a.descr);
    return a;
}

int64_t npy_data_bytes(const std::string& descr, const std::vector<int64_t>& shape) {
    return byte_size(shape, item_size(descr));
}

std::string npy_header_bytes(const std::string& descr, const std::vector<int64_t>& shape) {
    std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                     descr, shape_tuple(shape));
    // Pad with spaces and end with '\n' so that the data starts at a multiple of 64 bytes, as
    // NumPy does; version 2.0 (u32 length) only if the header does not fit a u16.
    size_t prefix = 10;
    size_t total = prefix + header.size() + 1;
    if (total + 63 - prefix > 0xffff) prefix = 12, total = prefix + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::string head(kMagic);
    head += static_cast<char>(prefix == 10 ? 1 : 2);
    head += '\0';
    for (size_t i = 0; i < prefix - 8; ++i)
        head += static_cast<char>(header.size() >> (8 * i));
    return head + header;
}

void write_npy(const std::string& path,
               const std::string& descr,
               const std::vector<int64_t>& shape,
               const void* data) {
    if (descr != "<i4" && descr != "<i8" && descr != "<f4" && descr != "<f8")
        fail(kComponent, "{}: descr: expected one of <i4, <i8, <f4, <f8, found '{}'", path, descr);
    const int64_t n = byte_size(shape, item_size(descr));
    if (n < 0)
        fail(kComponent,
             "{}: shape: expected non-negative dimensions with a byte size below "
             "2^63, found {}",
             path, shape_tuple(shape));
    if (n > 0 && data == nullptr)
        fail(kComponent, "{}: data: expected a pointer to {} bytes, found null", path, n);

    const std::string head = npy_header_bytes(descr, shape);
    const detail::Chunk chunks[] = {{head.data(), head.size()}, {data, static_cast<size_t>(n)}};
    detail::write_file_atomic(path, chunks, kComponent);
}

}  // namespace polymoe::io
