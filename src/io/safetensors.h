// safetensors reader (memory-mapped, zero-copy) and writer.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
// [begin, end)}, "__metadata__": {str: str}}, then the data section. The reader validates
// everything before any tensor is used: header length inside the file, JSON well-formed, dtype
// names known, prod(shape) * dtype size == end - begin, offsets inside the data section, tensors
// contiguous without gaps or overlap. The writer aligns the data section to 8 bytes (header padded
// with spaces) and writes {"format": "pt"} metadata by default, as transformers expects.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace polymoe::io {

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    int64_t begin = 0, end = 0;  // byte offsets into the data section
    int64_t numel() const;
};

// "[2, 3]" for error messages.
std::string shape_str(const std::vector<int64_t>& shape);

class SafetensorsFile {
public:
    // Maps and validates `path`; throws polymoe::Error naming the file and the problem.
    static SafetensorsFile open(const std::string& path);
    SafetensorsFile() = default;
    SafetensorsFile(SafetensorsFile&&) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;
    ~SafetensorsFile();

    const std::string& path() const { return path_; }
    // Tensors in data-offset order.
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    // nullptr if absent.
    const TensorInfo* find(std::string_view name) const;
    // Pointer to the tensor's bytes inside the mapping (valid while this object lives).
    const void* data(const TensorInfo& t) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

private:
    std::string path_;
    void* map_ = nullptr;
    size_t map_size_ = 0;
    const uint8_t* data_section_ = nullptr;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t> index_;
    std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    const void* data = nullptr;  // prod(shape) * dtype_size bytes
    // When data is null: fills the prod(shape) * dtype_size bytes at its argument, called just
    // before they are written, so a writer of generated tensors holds one tensor at a time.
    std::function<void(void*)> produce = {};
};

// Writes tensors in the given order to `path` (via path + ".tmp", fsync, rename).
void write_safetensors(const std::string& path,
                       const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace polymoe::io
