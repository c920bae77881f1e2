// NumPy .npz archives: a zip of .npy members ("name.npy" holds array "name"), as written by
// numpy.savez (members stored) and numpy.savez_compressed (members deflated). The zip container
// is handled by Debian's minizip (central directory, zip64, local-header checks) and deflated
// members are inflated by zlib straight out of a memory mapping; no pickles are ever read
// (object arrays are refused by the .npy parser).
//
// Limits are enforced before anything is allocated: a member's uncompressed size must match its
// .npy header exactly, a stored member's sizes must agree and fit in the file, a deflated one may
// not claim more than deflate's maximum ratio of its compressed size, and every member's CRC-32
// is checked. Errors name the archive, the key and what was expected.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/npy.h"

namespace polymoe::io {

class NpzReader {
public:
    // Lists the archive's members; throws polymoe::Error for a file that is not a readable zip
    // (truncated, encrypted, a pickle, ...). Members whose name does not end in ".npy" are
    // ignored, like numpy.load does for its keys.
    static NpzReader open(const std::string& path);

    const std::string& path() const { return file_.path(); }
    std::vector<std::string> keys() const;  // sorted
    bool has(const std::string& key) const { return entries_.count(key) != 0; }
    // The member's .npy header (descr, shape), decoding only its first bytes.
    NpyHeader header(const std::string& key) const;
    // The whole array, little-endian; throws naming the key if it is missing or corrupt.
    NpyArray read(const std::string& key) const;
    // Bytes of the archive (for throughput figures).
    uint64_t file_bytes() const { return file_.size(); }

private:
    struct Entry {
        uint64_t offset = 0;  // of the member's (compressed) data in the file
        uint64_t compressed = 0, uncompressed = 0;
        uint32_t crc = 0;
        bool deflated = false;
    };
    const Entry& entry(const std::string& key) const;
    std::string origin(const std::string& key) const;
    MappedFile file_;
    std::map<std::string, Entry> entries_;
};

// Writes an .npz member by member, each streamed in pieces (so a large array never has to exist
// in one buffer): begin(key, descr, shape), write() exactly the array's data bytes, end(). The
// archive is built under "<path>.tmp" and renamed by finish(); members are stored (like
// numpy.savez) unless `compress` (deflate level 1, readable by numpy.load either way).
class NpzWriter {
public:
    NpzWriter(const std::string& path, bool compress);
    ~NpzWriter();  // removes the temporary file if finish() was not called
    NpzWriter(const NpzWriter&) = delete;
    NpzWriter& operator=(const NpzWriter&) = delete;

    void begin(const std::string& key, const std::string& descr, const std::vector<int64_t>& shape);
    void write(const void* data, size_t bytes);
    void end();
    // A whole array in one call.
    void add(const std::string& key,
             const std::string& descr,
             const std::vector<int64_t>& shape,
             const void* data);
    void finish();
    uint64_t data_bytes() const { return data_bytes_; }  // array bytes written so far

private:
    std::string path_, tmp_, key_;
    bool compress_ = false, open_member_ = false;
    void* zip_ = nullptr;  // minizip zipFile
    int64_t want_ = 0, got_ = 0;
    uint64_t data_bytes_ = 0;
};

// Unicode array helpers: the '<U..' descr and data for `strings` (UTF-8 in, UTF-32 out); the
// item width is the longest string's code-point count (at least 1).
struct UnicodeArray {
    std::string descr;
    std::vector<uint32_t> data;
};
UnicodeArray make_unicode_array(const std::vector<std::string>& strings);

}  // namespace polymoe::io
