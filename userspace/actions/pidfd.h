// A process held by a pidfd: signals reach the process we looked at, never a
// later process that reused its pid.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace diskwatch {

class Pidfd {
public:
    // Opens a pidfd for pid, then checks (now that the pid is pinned) that the
    // process is the one meant: same comm when given, and started at
    // `expected_start_boot_s` (seconds since boot, as /proc/<pid>/stat said
    // when the process was first seen; the same clock tick; 0: not checked).
    // nullopt with the reason in *error otherwise.
    static std::optional<Pidfd> open(pid_t pid, const std::string &expected_comm, double expected_start_boot_s,
                                     std::string *error);
    Pidfd(Pidfd &&other) noexcept : fd_(other.fd_), pid_(other.pid_) { other.fd_ = -1; }
    Pidfd &operator=(Pidfd &&other) noexcept;
    Pidfd(const Pidfd &) = delete;
    ~Pidfd();

    // pidfd_send_signal; false with errno text in *error.
    bool signal(int signo, std::string *error = nullptr) const;
    // True once the process has exited (the pidfd is readable).
    bool exited() const;
    pid_t pid() const { return pid_; }
    int fd() const { return fd_; }

private:
    Pidfd(int fd, pid_t pid) : fd_(fd), pid_(pid) {}
    int fd_ = -1;
    pid_t pid_ = 0;
};

// Process start time, in seconds since boot (/proc/<pid>/stat field 22).
std::optional<double> process_start_boot_s(pid_t pid);
// Do two start times (seconds since boot, from /proc/<pid>/stat) name the
// same clock tick, so the same process on one pid?
bool same_start(double a_boot_s, double b_boot_s);
// CLOCK_BOOTTIME now, in seconds.
double boot_now_s();
// The process's state letter (R, S, D, T, t, Z ...), or 0 when it is gone
// (or its stat is unreadable: unknown).
char process_state(pid_t pid, const std::string &proc_root = "/proc");

}  // namespace diskwatch
