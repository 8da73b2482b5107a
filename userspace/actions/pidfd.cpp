#include "actions/pidfd.h"

#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "resolve/processes.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

std::string format_boot_s(double boot_s)
{
    char text[32];
    std::snprintf(text, sizeof(text), "%.2f", boot_s);
    return text;
}

}  // namespace

std::optional<double> process_start_boot_s(pid_t pid)
{
    return read_process_start_boot_s(pid);
}

double boot_now_s()
{
    timespec now {};
    ::clock_gettime(CLOCK_BOOTTIME, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

char process_state(pid_t pid, const std::string &proc_root)
{
    const auto stat = read_process_stat(proc_root + "/" + std::to_string(pid));
    const auto state = stat ? stat->field(3) : std::nullopt;
    return state && state->size() == 1 ? state->front() : 0;
}

bool same_start(double a_boot_s, double b_boot_s)
{
    // Both come from /proc/<pid>/stat, in whole clock ticks: the same process
    // has the same tick; half a tick absorbs the division's rounding.
    return std::fabs(a_boot_s - b_boot_s) < 0.5 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::optional<Pidfd> Pidfd::open(pid_t pid, const std::string &expected_comm, double expected_start_boot_s,
                                 std::string *error)
{
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
        *error = "pidfd_open(" + std::to_string(pid) + "): " + errno_text(errno);
        return std::nullopt;
    }
    Pidfd handle(fd, pid);
    // The pid is pinned now: whatever /proc says about it is about this process.
    if (!expected_comm.empty()) {
        auto identity = read_process_identity(pid);
        if (!identity || identity->comm != expected_comm) {
            *error = "pid " + std::to_string(pid) + " is now " + (identity ? identity->comm : "gone") +
                     ", not " + expected_comm + " (the pid was reused)";
            return std::nullopt;
        }
    }
    if (expected_start_boot_s > 0) {
        // A name is no identity (any process can take it): the start time is.
        // A process that took the pid after the one meant exited started later.
        auto started = process_start_boot_s(pid);
        if (!started) {
            *error = "pid " + std::to_string(pid) + " is gone";
            return std::nullopt;
        }
        if (!same_start(*started, expected_start_boot_s)) {
            *error = "pid " + std::to_string(pid) + " is now a process started at " + format_boot_s(*started) +
                     " s after boot, not the one started at " + format_boot_s(expected_start_boot_s) +
                     " s (the pid was reused)";
            return std::nullopt;
        }
    }
    return handle;
}

Pidfd &Pidfd::operator=(Pidfd &&other) noexcept
{
    if (this != &other) {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = other.fd_;
        pid_ = other.pid_;
        other.fd_ = -1;
    }
    return *this;
}

Pidfd::~Pidfd()
{
    if (fd_ >= 0)
        ::close(fd_);
}

bool Pidfd::signal(int signo, std::string *error) const
{
    if (::syscall(SYS_pidfd_send_signal, fd_, signo, nullptr, 0) == 0)
        return true;
    if (error)
        *error = std::string("pidfd_send_signal(") + std::to_string(pid_) + ", " + ::sigabbrev_np(signo) +
                 "): " + errno_text(errno);
    return false;
}

bool Pidfd::exited() const
{
    pollfd entry {fd_, POLLIN, 0};
    return ::poll(&entry, 1, 0) == 1;
}

}  // namespace diskwatch
