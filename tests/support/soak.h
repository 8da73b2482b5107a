// Test support for the soaks: a steady stream of short-lived writers whose
// bytes are known exactly, and a process's resident memory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

namespace diskwatch::test {

struct ShortLivedWriters {
    long long bytes_written = 0;  // by the writers that exited 0
    int spawned = 0;
    int failed = 0;
};

// For `duration`, forks a writer named `comm` `rate` times a second (at
// most `in_flight` alive at once). Each appends a size known from its index
// (512 B times 1..31) to one of eight files FILE_BASE0..7 and exits. Reaps
// only its own children, so a test may have others (top, an agent).
// `after_fork(elapsed)` runs after each fork, for sampling on the way.
ShortLivedWriters run_short_lived_writers(const std::string &file_base, const std::string &comm,
                                          std::chrono::seconds duration, int rate, int in_flight,
                                          const std::function<void(std::chrono::steady_clock::duration)> &after_fork);

// VmRSS of a process in KiB, or -1 when it is gone.
long long vm_rss_kib(pid_t pid);

}  // namespace diskwatch::test
