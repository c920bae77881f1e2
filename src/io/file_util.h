// Small POSIX file helpers shared by the io writers and readers (private to src/io): whole-file
// reads with errors naming the path, and crash-safe writes (write to path + ".tmp", fsync, rename,
// fsync the directory) so that a reader never sees a half-written file under the final name.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace polymoe::io::detail {

// Owns a POSIX file descriptor and closes it (ignoring errors) unless close() was called.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();
    int get() const { return fd_; }
    // Closes now; returns 0 or the errno of close().
    int close();

private:
    int fd_;
};

// Message of an errno value ("No such file or directory"), thread-safe.
std::string errno_message(int err);

// Reads the whole file at `path`; throws polymoe::Error "[component] path: cannot open: ...".
std::string read_file(const std::string& path, std::string_view component);

// `size` bytes at `data`, or, when data is null and `produce` is set, bytes that produce() writes
// into a buffer just before they are written (streaming writers hold one chunk at a time).
struct Chunk {
    const void* data = nullptr;
    size_t size = 0;
    std::function<void(void*)> produce = {};
};

// Writes the concatenated chunks to path + ".tmp", fsyncs it, renames it to `path` and fsyncs
// the parent directory. On failure the temporary file is removed and polymoe::Error is thrown.
void write_file_atomic(const std::string& path,
                       std::span<const Chunk> chunks,
                       std::string_view component);

// Writes `text` to `path` directly (no temporary name) and fsyncs it; for files inside a
// directory that is itself still under a temporary name.
void write_file_synced(const std::string& path, std::string_view text, std::string_view component);

// fsyncs a directory so that renames and creations inside it are durable.
void fsync_dir(const std::string& dir, std::string_view component);

}  // namespace polymoe::io::detail
