// A read-only memory mapping of a whole file (token shards, routing traces): the OS pages data
// in on demand, so a reader can open a trace larger than RAM and many processes share one copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace polymoe::io {

class MappedFile {
public:
    // Maps `path`; throws polymoe::Error "[component] path: ..." if it cannot be opened, is not
    // a regular file, or cannot be mapped. An empty file maps to size() == 0.
    static MappedFile open(const std::string& path, std::string_view component);
    MappedFile() = default;
    MappedFile(MappedFile&&) noexcept;
    MappedFile& operator=(MappedFile&&) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    const uint8_t* data() const { return static_cast<const uint8_t*>(map_); }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    void* map_ = nullptr;
    size_t size_ = 0;
};

}  // namespace polymoe::io
