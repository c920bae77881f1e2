// .npz reader and writer (see npz.h). minizip walks the central directory and checks each
// member's local header (unzOpenCurrentFile), which also tells where the member's data starts;
// the data itself is then read from a memory mapping of the archive: stored members are copied
// out, deflated ones are inflated by zlib (raw deflate, as in zip) directly into the array's
// buffer once the .npy header, inflated first, has told how large it must be.
#include "io/npz.h"

#include <fcntl.h>
#include <unistd.h>
#include <unzip.h>
#include <zip.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/check.h"
#include "core/error.h"
#include "io/file_util.h"

namespace polymoe::io {

namespace {

constexpr std::string_view kComponent = "npz";
// deflate cannot compress by more than about 1032:1, so a member claiming a larger ratio is
// corrupt (or a zip bomb) and is refused before its buffer is allocated.
constexpr uint64_t kMaxDeflateRatio = 1032;
// zlib's stream counters are 32-bit: feed and drain it in pieces of at most this many bytes.
constexpr uint64_t kZPiece = uint64_t{1} << 30;

uint32_t crc32_of(uint32_t crc, const uint8_t* p, uint64_t n) {
    while (n > 0) {
        const uInt piece = static_cast<uInt>(std::min(n, kZPiece));
        crc = static_cast<uint32_t>(::crc32(crc, p, piece));
        p += piece;
        n -= piece;
    }
    return crc;
}

// A raw-deflate stream over one member's compressed bytes, drained into caller buffers.
class Inflater {
public:
    Inflater(const uint8_t* in, uint64_t in_bytes, std::string origin)
        : in_(in), left_(in_bytes), origin_(std::move(origin)) {
        std::memset(&zs_, 0, sizeof zs_);
        if (inflateInit2(&zs_, -MAX_WBITS) != Z_OK)
            fail(kComponent, "{}: cannot initialise zlib inflate", origin_);
    }
    ~Inflater() { inflateEnd(&zs_); }
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;

    // Fills exactly n bytes of out; throws if the stream is corrupt or ends early.
    void read(uint8_t* out, uint64_t n) {
        while (n > 0) {
            if (zs_.avail_in == 0 && left_ > 0) {
                zs_.next_in = const_cast<Bytef*>(in_);
                zs_.avail_in = static_cast<uInt>(std::min(left_, kZPiece));
                in_ += zs_.avail_in;
                left_ -= zs_.avail_in;
            }
            const uInt piece = static_cast<uInt>(std::min(n, kZPiece));
            zs_.next_out = out;
            zs_.avail_out = piece;
            const int rc = inflate(&zs_, Z_NO_FLUSH);
            const uint64_t got = piece - zs_.avail_out;
            out += got;
            n -= got;
            if (rc == Z_STREAM_END) {
                ended_ = true;
                if (n > 0)
                    fail(kComponent,
                         "{}: deflated data: expected {} more bytes, found the end of the stream",
                         origin_, n);
                return;
            }
            if (rc != Z_OK && !(rc == Z_BUF_ERROR && got > 0))
                fail(kComponent,
                     "{}: deflated data: expected a valid deflate stream, found {} ({})", origin_,
                     zs_.msg ? zs_.msg : "an error", rc == Z_BUF_ERROR ? "truncated" : "corrupt");
        }
    }
    // Checks that nothing follows the bytes read.
    void expect_end() {
        if (ended_) return;
        uint8_t extra;
        zs_.next_out = &extra;
        zs_.avail_out = 1;
        if (zs_.avail_in == 0 && left_ > 0) {
            zs_.next_in = const_cast<Bytef*>(in_);
            zs_.avail_in = static_cast<uInt>(std::min(left_, kZPiece));
            in_ += zs_.avail_in;
            left_ -= zs_.avail_in;
        }
        const int rc = inflate(&zs_, Z_FINISH);
        if (rc != Z_STREAM_END || zs_.avail_out == 0)
            fail(kComponent,
                 "{}: deflated data: expected the end of the stream after the array, found {}",
                 origin_, zs_.avail_out == 0 ? "more data" : "a truncated or corrupt stream");
    }

private:
    z_stream zs_;
    const uint8_t* in_;
    uint64_t left_;
    std::string origin_;
    bool ended_ = false;
};

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace

NpzReader NpzReader::open(const std::string& path) {
    NpzReader r;
    r.file_ = MappedFile::open(path, kComponent);
    unzFile z = unzOpen64(path.c_str());
    if (!z)
        fail(kComponent,
             "{}: expected a zip archive (.npz), found {} bytes without a readable zip central "
             "directory (truncated, or not an .npz)",
             path, r.file_.size());
    // Closes the handle on every path out of this function.
    std::unique_ptr<void, int (*)(unzFile)> guard(z, unzClose);
    int rc = unzGoToFirstFile(z);
    for (; rc == UNZ_OK; rc = unzGoToNextFile(z)) {
        unz_file_info64 info;
        char name[1024];
        if (unzGetCurrentFileInfo64(z, &info, name, sizeof name, nullptr, 0, nullptr, 0) != UNZ_OK)
            fail(kComponent, "{}: expected a readable zip directory entry, found a corrupt one",
                 path);
        std::string key(name);
        if (key.size() < 4 || key.compare(key.size() - 4, 4, ".npy") != 0) continue;
        key.resize(key.size() - 4);
        const std::string origin = path + ":" + key;
        if (info.flag & 1u)
            fail(kComponent, "{}: expected an unencrypted member, found an encrypted one", origin);
        if (info.compression_method != 0 && info.compression_method != Z_DEFLATED)
            fail(kComponent,
                 "{}: compression: expected stored (0) or deflated (8), found method {}", origin,
                 info.compression_method);
        if (unzOpenCurrentFile(z) != UNZ_OK)
            fail(kComponent, "{}: expected a valid local zip header, found a corrupt one", origin);
        Entry e;
        e.offset = unzGetCurrentFileZStreamPos64(z);
        unzCloseCurrentFile(z);
        e.compressed = info.compressed_size;
        e.uncompressed = info.uncompressed_size;
        e.crc = static_cast<uint32_t>(info.crc);
        e.deflated = info.compression_method == Z_DEFLATED;
        if (e.offset > r.file_.size() || e.compressed > r.file_.size() - e.offset)
            fail(kComponent,
                 "{}: expected {} bytes of member data at offset {}, found a {}-byte archive "
                 "(truncated?)",
                 origin, e.compressed, e.offset, r.file_.size());
        if (!e.deflated && e.compressed != e.uncompressed)
            fail(kComponent,
                 "{}: expected equal compressed and uncompressed sizes for a stored member, "
                 "found {} and {}",
                 origin, e.compressed, e.uncompressed);
        if (e.deflated && e.uncompressed / kMaxDeflateRatio > e.compressed)
            fail(kComponent,
                 "{}: expected an uncompressed size at most {}x the compressed size ({}), found "
                 "{} (corrupt sizes or a zip bomb)",
                 origin, kMaxDeflateRatio, e.compressed, e.uncompressed);
        if (!r.entries_.emplace(key, e).second)
            fail(kComponent, "{}: expected one member per key, found '{}.npy' twice", path, key);
    }
    if (rc != UNZ_END_OF_LIST_OF_FILE)
        fail(kComponent, "{}: expected a readable zip directory, found a corrupt one (code {})",
             path, rc);
    return r;
}

std::vector<std::string> NpzReader::keys() const {
    std::vector<std::string> k;
    for (const auto& [name, e] : entries_)
        k.push_back(name);
    return k;
}

std::string NpzReader::origin(const std::string& key) const {
    return path() + ":" + key;
}

const NpzReader::Entry& NpzReader::entry(const std::string& key) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
        std::string all;
        for (const auto& [name, e] : entries_)
            all += (all.empty() ? "" : ", ") + name;
        fail(kComponent, "{}: key '{}': expected it in the archive, found only [{}]", path(), key,
             all);
    }
    return it->second;
}

NpyHeader NpzReader::header(const std::string& key) const {
    const Entry& e = entry(key);
    const uint64_t n = std::min<uint64_t>(e.uncompressed, kMaxNpyHeaderBytes + 12);
    const uint8_t* src = file_.data() + e.offset;
    if (!e.deflated)
        return parse_npy_header(std::string_view(reinterpret_cast<const char*>(src), n),
                                origin(key));
    std::string buf(n, '\0');
    Inflater inf(src, e.compressed, origin(key));
    inf.read(reinterpret_cast<uint8_t*>(buf.data()), n);
    return parse_npy_header(buf, origin(key));
}

NpyArray NpzReader::read(const std::string& key) const {
    const Entry& e = entry(key);
    const std::string where = origin(key);
    const uint8_t* src = file_.data() + e.offset;
    // The .npy prefix and header (and possibly some data) first, to size the array.
    const uint64_t head_n = std::min<uint64_t>(e.uncompressed, kMaxNpyHeaderBytes + 12);
    std::string head;
    std::unique_ptr<Inflater> inf;
    if (e.deflated) {
        inf = std::make_unique<Inflater>(src, e.compressed, where);
        head.resize(head_n);
        inf->read(reinterpret_cast<uint8_t*>(head.data()), head_n);
    } else {
        head.assign(reinterpret_cast<const char*>(src), head_n);
    }
    const NpyHeader h = parse_npy_header(head, where);
    if (h.data_offset + static_cast<uint64_t>(h.data_bytes) != e.uncompressed)
        fail(kComponent,
             "{}: size: expected {} bytes (header {} + shape {} of '{}'), found a member of {} "
             "bytes",
             where, h.data_offset + static_cast<uint64_t>(h.data_bytes), h.data_offset,
             shape_text(h.shape), h.descr, e.uncompressed);
    NpyArray a;
    a.descr = h.descr;
    a.shape = h.shape;
    a.bytes.resize(static_cast<size_t>(h.data_bytes));
    uint32_t crc = 0;
    if (e.deflated) {
        // Data already inflated with the header, then the rest straight into the array.
        const uint64_t have = head_n - h.data_offset;
        std::memcpy(a.bytes.data(), head.data() + h.data_offset, have);
        inf->read(a.bytes.data() + have, static_cast<uint64_t>(h.data_bytes) - have);
        inf->expect_end();
        crc = crc32_of(0, reinterpret_cast<const uint8_t*>(head.data()), head_n);
        crc = crc32_of(crc, a.bytes.data() + have, static_cast<uint64_t>(h.data_bytes) - have);
    } else {
        std::memcpy(a.bytes.data(), src + h.data_offset, static_cast<size_t>(h.data_bytes));
        crc = crc32_of(0, src, e.uncompressed);
    }
    if (crc != e.crc)
        fail(kComponent, "{}: CRC-32: expected {:08x} (zip directory), found {:08x}", where, e.crc,
             crc);
    if (h.big_endian) byteswap_items(a.bytes.data(), h.data_bytes, a.descr);
    return a;
}

NpzWriter::NpzWriter(const std::string& path, bool compress)
    : path_(path), tmp_(path + ".tmp"), compress_(compress) {
    zip_ = zipOpen64(tmp_.c_str(), APPEND_STATUS_CREATE);
    if (!zip_) fail(kComponent, "{}: cannot create: {}", tmp_, detail::errno_message(errno));
}

NpzWriter::~NpzWriter() {
    if (zip_) {
        zipClose(zip_, nullptr);
        std::error_code ec;
        std::filesystem::remove(tmp_, ec);
    }
}

void NpzWriter::begin(const std::string& key,
                      const std::string& descr,
                      const std::vector<int64_t>& shape) {
    POLYMOE_CHECK(zip_ && !open_member_, "npz: begin('{}') with a member open", key);
    want_ = npy_data_bytes(descr, shape);
    if (want_ < 0)
        fail(kComponent, "{}: key '{}': expected a shape with a byte size below 2^63, found {}",
             path_, key, shape_text(shape));
    const std::string head = npy_header_bytes(descr, shape);
    zip_fileinfo zi;
    std::memset(&zi, 0, sizeof zi);
    // zip64 records only where a member can exceed 4 GiB, so small archives stay plain zip.
    const int zip64 = static_cast<uint64_t>(want_) + head.size() >= 0xffffffffull ? 1 : 0;
    const std::string name = key + ".npy";
    if (zipOpenNewFileInZip64(zip_, name.c_str(), &zi, nullptr, 0, nullptr, 0, nullptr,
                              compress_ ? Z_DEFLATED : 0, compress_ ? 1 : 0, zip64) != ZIP_OK)
        fail(kComponent, "{}: key '{}': cannot add the member", tmp_, key);
    key_ = key;
    open_member_ = true;
    got_ = 0;
    if (zipWriteInFileInZip(zip_, head.data(), static_cast<unsigned>(head.size())) != ZIP_OK)
        fail(kComponent, "{}: key '{}': write failed: {}", tmp_, key, detail::errno_message(errno));
}

void NpzWriter::write(const void* data, size_t bytes) {
    POLYMOE_CHECK(open_member_, "npz: write() without begin()");
    POLYMOE_CHECK(got_ + static_cast<int64_t>(bytes) <= want_,
                  "npz: key '{}': {} bytes written for an array of {}", key_,
                  got_ + static_cast<int64_t>(bytes), want_);
    const auto* p = static_cast<const uint8_t*>(data);
    size_t left = bytes;
    while (left > 0) {
        const unsigned piece = static_cast<unsigned>(std::min<size_t>(left, kZPiece));
        if (zipWriteInFileInZip(zip_, p, piece) != ZIP_OK)
            fail(kComponent, "{}: key '{}': write failed: {}", tmp_, key_,
                 detail::errno_message(errno));
        p += piece;
        left -= piece;
    }
    got_ += static_cast<int64_t>(bytes);
    data_bytes_ += bytes;
}

void NpzWriter::end() {
    POLYMOE_CHECK(open_member_ && got_ == want_, "npz: key '{}': {} of {} bytes written", key_,
                  got_, want_);
    if (zipCloseFileInZip(zip_) != ZIP_OK)
        fail(kComponent, "{}: key '{}': cannot close the member", tmp_, key_);
    open_member_ = false;
}

void NpzWriter::add(const std::string& key,
                    const std::string& descr,
                    const std::vector<int64_t>& shape,
                    const void* data) {
    begin(key, descr, shape);
    if (want_ > 0) write(data, static_cast<size_t>(want_));
    end();
}

void NpzWriter::finish() {
    POLYMOE_CHECK(zip_ && !open_member_, "npz: finish() with a member open");
    const int rc = zipClose(zip_, nullptr);
    zip_ = nullptr;
    if (rc != ZIP_OK) fail(kComponent, "{}: cannot finish the archive", tmp_);
    // Durable before it appears under its final name (as the other writers in src/io).
    {
        detail::Fd fd(::open(tmp_.c_str(), O_RDONLY));
        if (fd.get() < 0 || ::fsync(fd.get()) != 0)
            fail(kComponent, "{}: fsync failed: {}", tmp_, detail::errno_message(errno));
    }
    std::error_code ec;
    std::filesystem::rename(tmp_, path_, ec);
    if (ec) fail(kComponent, "{}: cannot rename to {}: {}", tmp_, path_, ec.message());
    const auto parent = std::filesystem::path(path_).parent_path();
    detail::fsync_dir(parent.empty() ? "." : parent.string(), kComponent);
}

UnicodeArray make_unicode_array(const std::vector<std::string>& strings) {
    std::vector<std::vector<uint32_t>> cps;
    size_t width = 1;
    for (const std::string& s : strings) {
        std::vector<uint32_t> v;
        for (size_t i = 0; i < s.size();) {
            const auto b = static_cast<unsigned char>(s[i]);
            const int n = b < 0x80         ? 1
                          : (b >> 5) == 6  ? 2
                          : (b >> 4) == 14 ? 3
                          : (b >> 3) == 30 ? 4
                                           : 0;
            if (n == 0 || i + static_cast<size_t>(n) > s.size())
                fail(kComponent, "string '{}': expected UTF-8, found an invalid byte at {}", s, i);
            uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
            for (int k = 1; k < n; ++k) {
                const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
                if ((c >> 6) != 2)
                    fail(kComponent, "string '{}': expected UTF-8, found an invalid byte at {}", s,
                         i + static_cast<size_t>(k));
                cp = (cp << 6) | (c & 0x3Fu);
            }
            v.push_back(cp);
            i += static_cast<size_t>(n);
        }
        width = std::max(width, v.size());
        cps.push_back(std::move(v));
    }
    UnicodeArray u;
    u.descr = "<U" + std::to_string(width);
    u.data.assign(strings.size() * width, 0);
    for (size_t i = 0; i < cps.size(); ++i)
        std::copy(cps[i].begin(), cps[i].end(), u.data.begin() + static_cast<ptrdiff_t>(i * width));
    return u;
}

}  // namespace polymoe::io
