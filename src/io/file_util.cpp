// POSIX file helpers for src/io (see file_util.h). Every failure names the path and the errno
// message; descriptors are closed on every path, and a failed atomic write leaves no ".tmp" file.
#include "io/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <vector>

#include "core/error.h"

namespace polymoe::io::detail {

namespace {

void write_all(
    int fd, const void* data, size_t size, const std::string& path, std::string_view component) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(component, "{}: cannot write: {}", path, errno_message(errno));
        }
        // A regular file never accepts 0 bytes of a non-empty write; retrying would spin.
        if (n == 0) fail(component, "{}: cannot write: the file accepted no more bytes", path);
        p += n;
        size -= static_cast<size_t>(n);
    }
}

void sync_and_close(Fd& fd, const std::string& path, std::string_view component) {
    if (::fsync(fd.get()) != 0) fail(component, "{}: cannot fsync: {}", path, errno_message(errno));
    if (int err = fd.close(); err != 0)
        fail(component, "{}: cannot close: {}", path, errno_message(err));
}

std::string parent_dir(const std::string& path) {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

Fd::~Fd() {
    if (fd_ >= 0) ::close(fd_);
}

int Fd::close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
}

std::string errno_message(int err) {
    return std::generic_category().message(err);
}

std::string read_file(const std::string& path, std::string_view component) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) fail(component, "{}: cannot open: {}", path, errno_message(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        fail(component, "{}: cannot stat: {}", path, errno_message(errno));
    if (!S_ISREG(st.st_mode))
        fail(component, "{}: expected a regular file, found another kind of file", path);
    std::string out;
    out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(component, "{}: cannot read: {}", path, errno_message(errno));
        }
        if (n == 0) break;  // the file shrank while we read it
        done += static_cast<size_t>(n);
    }
    out.resize(done);
    return out;
}

void write_file_atomic(const std::string& path,
                       std::span<const Chunk> chunks,
                       std::string_view component) {
    const std::string tmp = path + ".tmp";
    try {
        Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (fd.get() < 0) fail(component, "{}: cannot create: {}", tmp, errno_message(errno));
        for (const Chunk& c : chunks) {
            if (c.data != nullptr || !c.produce) {
                write_all(fd.get(), c.data, c.size, tmp, component);
                continue;
            }
            std::vector<unsigned char> buf(c.size);
            c.produce(buf.data());
            write_all(fd.get(), buf.data(), buf.size(), tmp, component);
        }
        sync_and_close(fd, tmp, component);
        if (::rename(tmp.c_str(), path.c_str()) != 0)
            fail(component, "{}: cannot rename {} to it: {}", path, tmp, errno_message(errno));
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    fsync_dir(parent_dir(path), component);
}

void write_file_synced(const std::string& path, std::string_view text, std::string_view component) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) fail(component, "{}: cannot create: {}", path, errno_message(errno));
    write_all(fd.get(), text.data(), text.size(), path, component);
    sync_and_close(fd, path, component);
}

void fsync_dir(const std::string& dir, std::string_view component) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) fail(component, "{}: cannot open directory: {}", dir, errno_message(errno));
    // Some file systems do not support fsync on directories (EINVAL); durability is then the
    // file system's business, not an error of ours.
    if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != ENOTSUP)
        fail(component, "{}: cannot fsync directory: {}", dir, errno_message(errno));
}

}  // namespace polymoe::io::detail
