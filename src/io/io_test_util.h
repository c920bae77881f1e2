// Helpers for the io tests: a unique temporary directory removed at scope exit, raw file access
// for hand-built and corrupted files, and a check that a call throws polymoe::Error with a
// message naming the expected things (file path, tensor name, ...).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>

#include "core/error.h"

namespace polymoe::io::testing_util {

class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string name = std::string("polymoe_io_") + (info ? info->test_suite_name() : "x") +
                           "_" + (info ? info->name() : "x") + "_" + std::to_string(::getpid()) +
                           "_" + std::to_string(counter++);
        path_ = std::filesystem::path(::testing::TempDir()) / name;
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string path() const { return path_.string(); }
    std::string path(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, std::string_view bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(f.good()) << path;
}

inline std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Passes if f() throws polymoe::Error whose message contains every one of `parts`.
template <typename F>
::testing::AssertionResult throws_error_with(F&& f, std::initializer_list<std::string_view> parts) {
    try {
        f();
    } catch (const polymoe::Error& e) {
        std::string_view msg = e.what();
        for (std::string_view p : parts) {
            if (msg.find(p) == std::string_view::npos)
                return ::testing::AssertionFailure()
                       << "message \"" << msg << "\" does not contain \"" << p << "\"";
        }
        return ::testing::AssertionSuccess() << msg;
    }
    return ::testing::AssertionFailure() << "no polymoe::Error thrown";
}

}  // namespace polymoe::io::testing_util
