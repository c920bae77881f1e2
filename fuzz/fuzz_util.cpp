// Scratch files for the fuzz targets (see fuzz_util.h).
#include "fuzz_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace polymoe::fuzz {

namespace {

std::string make_dir() {
    std::string base;
    if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0')
        base = t;
    else if (std::filesystem::is_directory("/dev/shm"))
        base = "/dev/shm";
    else
        base = "/tmp";
    std::string tmpl = base + "/polymoe-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error("fuzz: cannot create a scratch directory under " + base);
    return tmpl;
}

struct ScratchDir {
    std::string path = make_dir();
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

const std::string& scratch_dir() {
    static ScratchDir dir;
    return dir.path;
}

std::string write_scratch(std::string_view name, const void* data, size_t size) {
    std::string path = scratch_dir() + "/" + std::string(name);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("fuzz: cannot write " + path);
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t w = ::write(fd, p, size);
        if (w <= 0) {
            ::close(fd);
            throw std::runtime_error("fuzz: cannot write " + path);
        }
        p += w;
        size -= static_cast<size_t>(w);
    }
    ::close(fd);
    return path;
}

}  // namespace polymoe::fuzz
