// MappedFile: open + fstat + mmap with errors that name the file.
#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "core/error.h"
#include "io/file_util.h"

namespace polymoe::io {

MappedFile MappedFile::open(const std::string& path, std::string_view component) {
    MappedFile f;
    f.path_ = path;
    detail::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) fail(component, "{}: cannot open: {}", path, detail::errno_message(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        fail(component, "{}: cannot stat: {}", path, detail::errno_message(errno));
    if (!S_ISREG(st.st_mode))
        fail(component, "{}: expected a regular file, found another kind of file", path);
    if (st.st_size == 0) return f;
    void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (m == MAP_FAILED) fail(component, "{}: cannot mmap: {}", path, detail::errno_message(errno));
    f.map_ = m;
    f.size_ = static_cast<size_t>(st.st_size);
    return f;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)),
      map_(std::exchange(o.map_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
    if (this != &o) {
        if (map_ != nullptr) ::munmap(map_, size_);
        path_ = std::move(o.path_);
        map_ = std::exchange(o.map_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

MappedFile::~MappedFile() {
    if (map_ != nullptr) ::munmap(map_, size_);
}

}  // namespace polymoe::io
