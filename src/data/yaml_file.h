// A size limit for the YAML files polymoe reads (corpus manifests, stage configs), checked before
// yaml-cpp loads them: real ones are a few KB, and yaml-cpp builds a node tree many times the
// file's size in memory, so a multi-GB file handed over by mistake (or on purpose) is refused
// with a clear error instead of exhausting memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace polymoe::data {

inline constexpr uintmax_t kMaxYamlBytes = uintmax_t{4} << 20;

inline void check_yaml_size(const std::string& path, std::string_view component) {
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size > kMaxYamlBytes)
        fail(component, "{}: file size: expected at most {} bytes of YAML, found {}", path,
             kMaxYamlBytes, size);
}

}  // namespace polymoe::data
