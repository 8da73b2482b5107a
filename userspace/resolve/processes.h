// pid -> what a person calls the process: its name, executable and owner.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// Reads /proc/<pid>/{comm,exe,status,stat}; nullopt when the process is gone
// (or a file is unreadable or not as the kernel writes it: unknown).
std::optional<ProcessIdentity> read_process_identity(int pid, const std::string &proc_root = "/proc");

// Process start time, in seconds since boot (/proc/<pid>/stat field 22);
// nullopt when the process is gone.
std::optional<double> read_process_start_boot_s(int pid, const std::string &proc_root = "/proc");

// The value of "<key>:" in a /proc/<pid>/status text, its leading blanks
// removed (status_value(text, "Uid") -> "1000\t1000\t1000\t1000").
std::optional<std::string_view> status_value(std::string_view status, std::string_view key);

// /proc/<pid>/stat, split into its fields after the comm.
struct ProcessStat {
    std::vector<std::string> fields;  // field 3 (state) on
    // Field n as proc(5) numbers them (3: state, 9: flags, 22: starttime);
    // nullopt for the pid and comm (1, 2) and past the end.
    std::optional<std::string_view> field(size_t n) const;
    // Field n as an unsigned number; nullopt when missing or not a number.
    std::optional<unsigned long long> number(size_t n) const;
};

// Reads <pid_dir>/stat (pid_dir: /proc/<pid>, /proc/self) whole: field 2 is
// "(comm)", and comm may hold any byte but NUL, newlines and parentheses
// included, so the fields that follow start after the last ')'. nullopt when
// the process is gone or the text is not as the kernel writes it (no ')',
// or no final '\n': cut short).
std::optional<ProcessStat> read_process_stat(const std::string &pid_dir);

}  // namespace diskwatch
