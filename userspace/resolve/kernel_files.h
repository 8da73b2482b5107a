// Reading the kernel's pseudo-files (/proc, cgroupfs, sysfs, mountinfo) and
// the few regular files that vanish under us (a container's config): one
// reader that never throws. A file of /proc/PID/ can fail between open and
// read (the process was reaped: ESRCH), a cgroup file can go with its cgroup
// (ENODEV), any read can fail (EIO): each is an ordinary outcome, carried in
// the result with its errno, for the caller to take as "unknown".
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace diskwatch {

struct KernelFile {
    std::string text;  // what was read; empty unless error == 0
    int error = 0;     // errno of the failed open(2) or read(2); EFBIG: larger than the cap
    bool ok() const { return error == 0; }
};

// Pseudo-files are small; the cap keeps a hostile or broken file from taking
// the agent's memory (mountinfo with thousands of mounts stays well below it).
inline constexpr size_t kKernelFileMaxBytes = size_t{16} << 20;

// open(O_RDONLY | O_CLOEXEC), then read(2) until end of file, EINTR retried:
// the file whole, in one pass (a seq_file such as /proc/PID/stat is only
// consistent when read whole).
KernelFile read_kernel_file(const std::string &path, size_t max_bytes = kKernelFileMaxBytes);
// A file a container runtime wrote (its state on disk, which whoever can write
// that directory controls): a regular file only, never through a symlink as
// its last component, never blocking on a FIFO or device put in its place.
KernelFile read_state_file(const std::string &path, size_t max_bytes);
// A configuration file an administrator wrote (/etc/logrotate.d/*,
// journald.conf, a unit file): the same, but through symlinks (packages and
// admins link them), still a regular file only and never blocking on a FIFO.
KernelFile read_config_file(const std::string &path, size_t max_bytes);

// A file that holds one decimal integer and a newline (a sysctl such as
// /proc/sys/kernel/bpf_stats_enabled); nullopt when unreadable or anything else.
std::optional<long long> read_integer_file(const std::string &path);

}  // namespace diskwatch
