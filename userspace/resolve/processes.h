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
};

// Reads /proc/<pid>/{comm,exe,status}; nullopt when the process is gone.
std::optional<ProcessIdentity> read_process_identity(int pid, const std::string &proc_root = "/proc");

}  // namespace diskwatch
