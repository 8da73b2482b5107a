#include "support/spawn.h"

#include <algorithm>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char **environ;

namespace diskwatch::test {

ChildProcess ChildProcess::start(const std::vector<std::string> &argv)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    std::vector<char *> args;
    for (const auto &arg : argv)
        args.push_back(const_cast<char *>(arg.c_str()));
    args.push_back(nullptr);
    ChildProcess child;
    int rc = posix_spawn(&child.pid_, argv[0].c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    if (rc != 0) {
        ::close(out[0]);
        ::close(err[0]);
        throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
    }
    child.out_fd_ = out[0];
    child.err_fd_ = err[0];
    return child;
}

ChildProcess::ChildProcess(ChildProcess &&other) noexcept
    : pid_(other.pid_), out_fd_(other.out_fd_), err_fd_(other.err_fd_), out_(std::move(other.out_)),
      err_(std::move(other.err_)), reaped_(other.reaped_), status_(other.status_)
{
    other.pid_ = -1;
    other.out_fd_ = other.err_fd_ = -1;
}

ChildProcess::~ChildProcess()
{
    if (pid_ > 0 && !reaped_) {
        ::kill(pid_, SIGCONT);  // never leave one stopped
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0)
        ::close(out_fd_);
    if (err_fd_ >= 0)
        ::close(err_fd_);
}

void ChildProcess::drain(int timeout_ms)
{
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n <= 0)
        return;
    char buffer[65536];
    for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t got = ::read(fds[i].fd, buffer, sizeof(buffer));
        if (got > 0) {
            (i == 0 ? out_ : err_).append(buffer, static_cast<size_t>(got));
        } else if (got == 0) {
            ::close(fds[i].fd);
            (i == 0 ? out_fd_ : err_fd_) = -1;
        }
    }
}

bool ChildProcess::wait_for_stderr(const std::string &needle, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (err_.find(needle) != std::string::npos)
            return true;
        if (err_fd_ < 0 && out_fd_ < 0)
            return false;
        drain(50);
    }
    return err_.find(needle) != std::string::npos;
}

bool ChildProcess::wait_for_more_stdout_lines(size_t more, std::chrono::milliseconds timeout)
{
    const auto lines = [&] { return static_cast<size_t>(std::count(out_.begin(), out_.end(), '\n')); };
    for (size_t before = out_.size() + 1; out_fd_ >= 0 && out_.size() != before;) {
        before = out_.size();
        drain(0);  // what is in the pipe already
    }
    const size_t wanted = lines() + more;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (lines() < wanted && (out_fd_ >= 0 || err_fd_ >= 0) && std::chrono::steady_clock::now() < deadline)
        drain(50);
    return lines() >= wanted;
}

bool ChildProcess::exited() const
{
    if (reaped_)
        return true;
    siginfo_t info {};
    // WNOWAIT leaves the zombie for wait() to reap.
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return false;
    return info.si_pid == pid_;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!reaped_) {
        while (out_fd_ >= 0 || err_fd_ >= 0) {
            drain(50);
            if (std::chrono::steady_clock::now() >= deadline)
                break;
        }
        pid_t got = ::waitpid(pid_, &status_, WNOHANG);
        if (got == pid_) {
            reaped_ = true;
            break;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid_, SIGCONT);
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status_, 0);
            reaped_ = true;
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    while (out_fd_ >= 0 || err_fd_ >= 0)
        drain(50);
    if (WIFEXITED(status_))
        return WEXITSTATUS(status_);
    return 128 + WTERMSIG(status_);
}

void ChildProcess::signal(int signo) const
{
    if (pid_ > 0 && !reaped_)
        ::kill(pid_, signo);
}

int run(const std::vector<std::string> &argv, std::string *output, std::chrono::milliseconds timeout)
{
    auto child = ChildProcess::start(argv);
    auto status = child.wait(timeout);
    if (output)
        *output = child.out() + child.err();
    return status.value_or(-1);
}

}  // namespace diskwatch::test
