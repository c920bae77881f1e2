// safetensors reader and writer (see safetensors.h). The reader maps the file read-only and
// validates the whole header against the format spec (github.com/huggingface/safetensors) before
// returning, so a SafetensorsFile that exists is always consistent: every tensor lies inside the
// data section, and the tensors tile it exactly. Note that data() is only as aligned as the file:
// files from our writer (and from the Python writer) start the data section at a multiple of 8.
#include "io/safetensors.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "core/check.h"
#include "core/error.h"
#include "io/file_util.h"

namespace polymoe::io {

namespace {

using nlohmann::json;
constexpr std::string_view kComponent = "safetensors";
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

uint64_t read_le_u64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

// A JSON value for an error message, cut to a readable length.
std::string brief(const json& v) {
    std::string s = v.dump();
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
}

// A non-negative JSON integer that fits in int64_t.
bool as_count(const json& v, int64_t* out) {
    if (v.is_number_unsigned()) {
        uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
        *out = static_cast<int64_t>(u);
        return true;
    }
    if (v.is_number_integer()) {
        int64_t i = v.get<int64_t>();
        if (i < 0) return false;
        *out = i;
        return true;
    }
    return false;
}

// prod(shape) * dtype_size(t), or -1 on overflow or a negative dimension.
int64_t byte_size(const std::vector<int64_t>& shape, DType t) {
    int64_t n = dtype_size(t);
    for (int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, d, &n)) return -1;
    }
    return n;
}

std::string known_dtypes() {
    std::string s;
    for (DType t :
         {DType::F64, DType::F32, DType::BF16, DType::F16, DType::I64, DType::I32, DType::U8}) {
        if (!s.empty()) s += ", ";
        s += dtype_name(t);
    }
    return s;
}

// Parses and checks one header entry (everything that does not involve other tensors).
TensorInfo parse_entry(const std::string& path,
                       const std::string& name,
                       const json& v,
                       int64_t data_size) {
    TensorInfo t;
    t.name = name;
    if (!v.is_object())
        fail(kComponent,
             "{}: tensor '{}': expected an object with dtype, shape and data_offsets, "
             "found {}",
             path, name, brief(v));

    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string())
        fail(kComponent, "{}: tensor '{}': dtype: expected a string, found {}", path, name,
             dt == v.end() ? "nothing" : brief(*dt));
    if (!parse_dtype(dt->get<std::string>(), &t.dtype))
        fail(kComponent, "{}: tensor '{}': dtype: expected one of {}, found {}", path, name,
             known_dtypes(), brief(*dt));

    auto sh = v.find("shape");
    bool shape_ok = sh != v.end() && sh->is_array();
    if (shape_ok) {
        for (const json& d : *sh) {
            int64_t n = 0;
            if (!as_count(d, &n)) {
                shape_ok = false;
                break;
            }
            t.shape.push_back(n);
        }
    }
    if (!shape_ok)
        fail(kComponent,
             "{}: tensor '{}': shape: expected a list of non-negative integers, "
             "found {}",
             path, name, sh == v.end() ? "nothing" : brief(*sh));

    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !as_count((*off)[0], &t.begin) ||
        !as_count((*off)[1], &t.end))
        fail(kComponent,
             "{}: tensor '{}': data_offsets: expected [begin, end] (non-negative "
             "integers), found {}",
             path, name, off == v.end() ? "nothing" : brief(*off));
    if (t.begin > t.end)
        fail(kComponent, "{}: tensor '{}': data_offsets: expected begin <= end, found [{}, {}]",
             path, name, t.begin, t.end);
    if (t.end > data_size)
        fail(kComponent,
             "{}: tensor '{}': data_offsets end: expected at most {} (the data section "
             "size), found {} (truncated file?)",
             path, name, data_size, t.end);

    int64_t want = byte_size(t.shape, t.dtype);
    if (want < 0)
        fail(kComponent,
             "{}: tensor '{}': shape {}: expected a byte size below 2^63, found an "
             "overflow",
             path, name, shape_str(t.shape));
    if (want != t.end - t.begin)
        fail(kComponent,
             "{}: tensor '{}': byte size: expected {} (shape {} of {}, {} bytes each), "
             "found {} (data_offsets [{}, {}])",
             path, name, want, shape_str(t.shape), dtype_name(t.dtype), dtype_size(t.dtype),
             t.end - t.begin, t.begin, t.end);
    return t;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& v) {
    std::map<std::string, std::string> out;
    bool ok = v.is_object();
    if (ok) {
        for (const auto& [k, val] : v.items()) {
            if (!val.is_string()) {
                ok = false;
                break;
            }
            out[k] = val.get<std::string>();
        }
    }
    if (!ok)
        fail(kComponent, "{}: __metadata__: expected a map of string to string, found {}", path,
             brief(v));
    return out;
}

// Sorts by data offset and checks that the tensors tile [0, data_size) without gaps or overlap.
void check_layout(const std::string& path, std::vector<TensorInfo>& tensors, int64_t data_size) {
    std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
    });
    int64_t expected = 0;
    std::string prev;  // tensor whose end is `expected`
    for (const TensorInfo& t : tensors) {
        if (t.begin != expected) {
            std::string where = prev.empty() ? std::string("the start of the data section")
                                             : fmt::format("the end of tensor '{}'", prev);
            std::string what =
                t.begin < expected
                    ? fmt::format("the tensors overlap by {} bytes", expected - t.begin)
                    : fmt::format("a gap of {} bytes", t.begin - expected);
            fail(kComponent, "{}: tensor '{}': data_offsets begin: expected {} ({}), found {} ({})",
                 path, t.name, expected, where, t.begin, what);
        }
        if (t.end > expected || prev.empty()) prev = t.name;
        expected = t.end;
    }
    if (expected != data_size)
        fail(kComponent,
             "{}: data section size: expected {} bytes (the end of the last tensor), "
             "found {} ({} trailing bytes)",
             path, expected, data_size, data_size - expected);
}

}  // namespace

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    return fmt::format("[{}]", fmt::join(shape, ", "));
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile f;
    f.path_ = path;
    {
        detail::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0)
            fail(kComponent, "{}: cannot open: {}", path, detail::errno_message(errno));
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0)
            fail(kComponent, "{}: cannot stat: {}", path, detail::errno_message(errno));
        if (!S_ISREG(st.st_mode))
            fail(kComponent, "{}: expected a regular file, found another kind of file", path);
        if (st.st_size < 8)
            fail(kComponent,
                 "{}: file size: expected at least 8 bytes (the header length), "
                 "found {}",
                 path, st.st_size);
        void* m =
            ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
        if (m == MAP_FAILED)
            fail(kComponent, "{}: cannot mmap: {}", path, detail::errno_message(errno));
        // From here on f's destructor unmaps, also when validation below throws.
        f.map_ = m;
        f.map_size_ = static_cast<size_t>(st.st_size);
    }

    const auto* base = static_cast<const uint8_t*>(f.map_);
    const uint64_t file_size = f.map_size_;
    const uint64_t header_len = read_le_u64(base);
    if (header_len > file_size - 8)
        fail(kComponent,
             "{}: header length: expected at most {} bytes (file size {} minus 8), "
             "found {}",
             path, file_size - 8, file_size, header_len);
    // The format's own cap (the reference implementation refuses larger headers): a JSON
    // header of GBs would cost several times its size in parsed nodes before any check ran.
    if (header_len > kMaxHeaderBytes)
        fail(kComponent, "{}: header length: expected at most {} bytes, found {}", path,
             kMaxHeaderBytes, header_len);
    const int64_t data_size = static_cast<int64_t>(file_size - 8 - header_len);
    f.data_section_ = base + 8 + header_len;

    // The callback records top-level keys: nlohmann keeps the last of duplicate keys silently,
    // but a tensor named twice is a malformed file.
    std::set<std::string> keys;
    std::string duplicate;
    auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
        if (depth == 1 && event == json::parse_event_t::key) {
            const auto& k = parsed.get_ref<const std::string&>();
            if (!keys.insert(k).second && duplicate.empty()) duplicate = k;
        }
        return true;
    };
    json header;
    try {
        const char* h = reinterpret_cast<const char*>(base + 8);
        header = json::parse(h, h + header_len, on_event);
    } catch (const json::exception& e) {
        fail(kComponent, "{}: header JSON: expected valid JSON, found {}", path, e.what());
    }
    if (!header.is_object())
        fail(kComponent, "{}: header JSON: expected an object, found {}", path, brief(header));
    if (!duplicate.empty())
        fail(kComponent, "{}: tensor '{}': expected once in the header, found twice", path,
             duplicate);

    for (const auto& [name, value] : header.items()) {
        if (name == "__metadata__") {
            f.metadata_ = parse_metadata(path, value);
        } else {
            f.tensors_.push_back(parse_entry(path, name, value, data_size));
        }
    }
    check_layout(path, f.tensors_, data_size);
    for (size_t i = 0; i < f.tensors_.size(); ++i)
        f.index_[f.tensors_[i].name] = i;
    return f;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)),
      map_(std::exchange(o.map_, nullptr)),
      map_size_(std::exchange(o.map_size_, 0)),
      data_section_(std::exchange(o.data_section_, nullptr)),
      tensors_(std::move(o.tensors_)),
      index_(std::move(o.index_)),
      metadata_(std::move(o.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
    if (this != &o) {
        if (map_ != nullptr) ::munmap(map_, map_size_);
        path_ = std::move(o.path_);
        map_ = std::exchange(o.map_, nullptr);
        map_size_ = std::exchange(o.map_size_, 0);
        data_section_ = std::exchange(o.data_section_, nullptr);
        tensors_ = std::move(o.tensors_);
        index_ = std::move(o.index_);
        metadata_ = std::move(o.metadata_);
    }
    return *this;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_ != nullptr) ::munmap(map_, map_size_);
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const void* SafetensorsFile::data(const TensorInfo& t) const {
    POLYMOE_DCHECK(map_ != nullptr && t.begin >= 0 && t.begin <= t.end &&
                       data_section_ + t.end <= static_cast<const uint8_t*>(map_) + map_size_,
                   "{}: tensor '{}' [{}, {}) is not inside the data section", path_, t.name,
                   t.begin, t.end);
    return data_section_ + t.begin;
}

void write_safetensors(const std::string& path,
                       const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    // Insertion-ordered JSON: __metadata__ first, then the tensors in file order, each with
    // dtype, shape, data_offsets (the order the Rust implementation writes).
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::set<std::string_view> names;
    std::vector<detail::Chunk> data_chunks;
    int64_t offset = 0;
    for (const TensorToWrite& t : tensors) {
        if (t.name.empty() || t.name == "__metadata__")
            fail(kComponent,
                 "{}: tensor name: expected a non-empty name other than __metadata__, "
                 "found '{}'",
                 path, t.name);
        if (!names.insert(t.name).second)
            fail(kComponent, "{}: tensor '{}': expected a unique name, found it twice", path,
                 t.name);
        int64_t n = byte_size(t.shape, t.dtype);
        if (n < 0)
            fail(kComponent,
                 "{}: tensor '{}': shape: expected non-negative dimensions with a byte "
                 "size below 2^63, found {}",
                 path, t.name, shape_str(t.shape));
        if (n > 0 && t.data == nullptr && !t.produce)
            fail(kComponent, "{}: tensor '{}': data: expected a pointer to {} bytes, found null",
                 path, t.name, n);
        if (__builtin_add_overflow(offset, n, &offset))
            fail(kComponent,
                 "{}: data section: expected a size below 2^63 bytes, found an "
                 "overflow at tensor '{}'",
                 path, t.name);
        header[t.name] = {{"dtype", dtype_name(t.dtype)},
                          {"shape", t.shape},
                          {"data_offsets", {offset - n, offset}}};
        if (n > 0) data_chunks.push_back({t.data, static_cast<size_t>(n), t.produce});
    }

    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {
        fail(kComponent, "{}: header: expected UTF-8 names and metadata, found {}", path, e.what());
    }
    // Pad with spaces so that the data section starts at a multiple of 8 bytes.
    text.append((8 - (8 + text.size()) % 8) % 8, ' ');
    uint8_t len[8];
    for (int i = 0; i < 8; ++i)
        len[i] = static_cast<uint8_t>(text.size() >> (8 * i));

    std::vector<detail::Chunk> chunks = {{len, 8}, {text.data(), text.size()}};
    chunks.insert(chunks.end(), data_chunks.begin(), data_chunks.end());
    detail::write_file_atomic(path, chunks, kComponent);
}

}  // namespace polymoe::io
