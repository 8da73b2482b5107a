// Which file a writer writes: named lazily from /proc/PID/fd, for the few
// rows shown, never on the hot path.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace diskwatch {

struct WrittenFile {
    std::string path;      // as /proc/PID/fd shows it, " (deleted)" removed; empty when not found
    uint64_t ino = 0;      // inode number on the row's device (0: unknown)
    bool deleted = false;  // unlinked but still open: its space is only freed on close ("df says full, du says not")
    uint64_t size_bytes = 0;
};

// Files process `pid` has open on device `dev` (kernel dev_t: major << 20 |
// minor). The inodes the kernel saw it write last come first; then the other
// regular files it holds open for writing there. At most `limit`. For a
// process that has exited, the inodes are returned without a path.
std::vector<WrittenFile> files_written_by(int pid, uint32_t dev, const std::vector<uint64_t> &last_inodes,
                                          size_t limit, const std::string &proc_root = "/proc");
// The same, on the devices `on_device` accepts (kernel dev_t): a row whose
// bytes were attributed from a container's overlay to the disk under it
// names the files the process holds open through the overlay.
std::vector<WrittenFile> files_written_by(int pid, const std::function<bool(uint32_t dev)> &on_device,
                                          const std::vector<uint64_t> &last_inodes, size_t limit,
                                          const std::string &proc_root = "/proc");

// What one /proc/PID/fd/N link names, shared by files_written_by and
// find_deleted_open_files (deleted_files.h).
struct FdTarget {
    std::string path;             // the link's target, " (deleted)" removed
    bool deleted_suffix = false;  // it ended in " (deleted)": a hint only, a file may be named so
};
// readlink(2) of `fd_link`; nullopt when the fd was closed or the process
// is gone (ENOENT, ESRCH: ordinary mid-scan) or it is not readable.
std::optional<FdTarget> read_fd_target(const std::string &fd_link);
// "flags:\t0100001" in /proc/PID/fdinfo/FD (octal) says O_WRONLY or O_RDWR;
// false when unreadable (the file was closed, the process is gone) or not a
// number: not known to write.
bool fd_opened_for_writing(const std::string &fdinfo_path);

}  // namespace diskwatch
