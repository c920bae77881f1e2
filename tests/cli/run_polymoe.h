// The CLI tests' way to run the polymoe binary (POLYMOE_BIN, set by CMake) in a child process:
// stdout and stderr into a log file, progress bars off, POLYMOE_FAULT_INJECT set or cleared, and
// an optional hook run in the child before exec (e.g. a resource limit). Returns how the child
// ended and what it printed.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

namespace polymoe::testing {

struct Outcome {
    bool killed = false;  // died of SIGKILL
    int code = -1;        // exit code when it exited, -1 otherwise
    std::string out;      // stdout and stderr
};

inline Outcome run_polymoe(const std::vector<std::string>& args,
                           const std::filesystem::path& log,
                           const std::string& fault = "",
                           const std::function<void()>& in_child = {}) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        if (in_child) in_child();
        if (fault.empty())
            ::unsetenv("POLYMOE_FAULT_INJECT");
        else
            ::setenv("POLYMOE_FAULT_INJECT", fault.c_str(), 1);
        ::setenv("POLYMOE_PROGRESS", "0", 1);
        std::vector<char*> argv{const_cast<char*>(POLYMOE_BIN)};
        for (const auto& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(POLYMOE_BIN, argv.data());
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    Outcome o;
    o.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(log);
    o.out.assign(std::istreambuf_iterator<char>(in), {});
    return o;
}

}  // namespace polymoe::testing
