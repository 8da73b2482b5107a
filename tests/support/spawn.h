// Test support: run a program (no shell) with its output captured, and make
// sure it is gone, never stopped, when the test ends however it ends.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace diskwatch::test {

class ChildProcess {
public:
    // Starts argv[0] (a path) with stdout and stderr captured through pipes.
    static ChildProcess start(const std::vector<std::string> &argv);
    ChildProcess(ChildProcess &&other) noexcept;
    ChildProcess &operator=(ChildProcess &&) = delete;
    ~ChildProcess();  // SIGCONT + SIGKILL + reap, if still running

    pid_t pid() const { return pid_; }
    // Reads stderr until a line containing `needle` shows up; false on timeout
    // or if the process exits first.
    bool wait_for_stderr(const std::string &needle, std::chrono::milliseconds timeout);
    // Reads what stdout holds now, then waits until `more` complete lines
    // follow; false on timeout or if the process exits first.
    bool wait_for_more_stdout_lines(size_t more, std::chrono::milliseconds timeout);
    // Waits for exit, collecting output; nullopt on timeout (the process is
    // then killed). Returns the exit status as from waitpid's WEXITSTATUS, or
    // 128+signal.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    // True once the process has exited (it is not reaped: wait() still
    // collects its status and output).
    bool exited() const;
    void signal(int signo) const;
    const std::string &out() const { return out_; }
    const std::string &err() const { return err_; }

private:
    ChildProcess() = default;
    void drain(int timeout_ms);

    pid_t pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    std::string out_;
    std::string err_;
    bool reaped_ = false;
    int status_ = 0;
};

// Runs a program to completion; returns its exit status (and output in *output).
int run(const std::vector<std::string> &argv, std::string *output = nullptr,
        std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace diskwatch::test
