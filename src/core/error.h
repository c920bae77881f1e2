// polymoe::Error: the one exception type for user-facing failures (bad flag, missing file, wrong
// shape in a checkpoint). Messages follow "[component] what: expected X, found Y (where)", so a
// user can act on them without reading code. Only cli/main.cpp catches it; broken internal
// invariants use POLYMOE_CHECK (check.h) instead.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace polymoe {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Usage errors (unknown flag, bad flag value) map to exit code 2 instead of 1.
class UsageError : public Error {
public:
    explicit UsageError(const std::string& msg) : Error(msg) {}
};

// Throws Error("[component] " + formatted message).
template <typename... Args>
[[noreturn]] void fail(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
    throw Error(fmt::format("[{}] {}", component, fmt::format(f, std::forward<Args>(args)...)));
}

}  // namespace polymoe
