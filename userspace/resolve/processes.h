// pid -> what a person calls the process: its name, executable and owner.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace diskwatch {

struct ProcessIdentity {
    std::string comm;  // /proc/<pid>/comm, at most 15 bytes, as the kernel keeps it
    std::string exe;   // /proc/<pid>/exe target; empty when unreadable (kernel thread, exited)
    uint32_t uid = 0;
    // When it started, in seconds since boot (/proc/<pid>/stat field 22, in
    // clock ticks); 0: unknown. A pid names a process only together with
    // this: a later process that reuses the pid has a later start.
    double start_boot_s = 0;
};

// Reads /proc/<pid>/{comm,exe,status,stat}; nullopt when the process is gone.
std::optional<ProcessIdentity> read_process_identity(int pid, const std::string &proc_root = "/proc");

// Process start time, in seconds since boot (/proc/<pid>/stat field 22);
// nullopt when the process is gone.
std::optional<double> read_process_start_boot_s(int pid, const std::string &proc_root = "/proc");

}  // namespace diskwatch
