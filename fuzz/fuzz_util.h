// Helpers shared by the fuzz targets: a private scratch directory per process (the readers take
// paths, so the bytes are written to a file first) and the guard that turns polymoe::Error into
// "handled" while letting every other exception escape to libFuzzer or GoogleTest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace polymoe::fuzz {

// A directory created on first use (under $TMPDIR, else /dev/shm or /tmp) and removed at exit.
const std::string& scratch_dir();

// Writes `size` bytes to scratch_dir()/name (replacing it, creating folders in `name`) and
// returns the path.
std::string write_scratch(std::string_view name, const void* data, size_t size);

// Runs f(); a polymoe::Error is the expected result of hostile input and is swallowed.
template <typename F>
int guarded(F&& f) {
    try {
        f();
    } catch (const polymoe::Error&) {
    }
    return 0;
}

}  // namespace polymoe::fuzz
