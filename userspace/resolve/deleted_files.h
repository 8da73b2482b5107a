// Space held by files that were deleted but are still open ("df says full, du
// says not"): found by walking /proc/*/fd once, for `explain`, never on the
// hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace diskwatch {

// One process that holds a deleted file open.
struct DeletedFileHolder {
    int pid = 0;
    std::string comm;    // /proc/PID/comm, newline removed; raw bytes (any but NUL); empty when unreadable
    std::string cgroup;  // cgroup v2 path ("/system.slice/foo.service"); empty when unknown
    std::vector<int> fds;  // its descriptors on the file, ascending
    bool writable = false;  // one of them is open O_WRONLY or O_RDWR: it may still be growing
};

// One deleted file (one inode): its space is freed only when the last holder closes it.
struct DeletedFile {
    std::string path;      // the name it had, " (deleted)" removed; raw bytes
    uint32_t dev = 0;      // kernel dev_t (major << 20 | minor), as the BPF side records
    std::string dev_text;  // "major:minor"
    uint64_t inode = 0;
    uint64_t size_bytes = 0;       // st_size (a sparse file may be larger than what it holds)
    uint64_t allocated_bytes = 0;  // st_blocks * 512: the space actually held
    std::vector<DeletedFileHolder> holders;  // by pid
};

struct DeletedFilesLimits {
    // Descriptors looked at over all processes: a host with millions of open
    // files is scanned in bounded time.
    size_t max_fds = 1'000'000;
    size_t max_files = 1000;           // entries returned (the largest kept)
    size_t max_holders_per_file = 256;  // a file shared by a fork storm
};

struct DeletedFilesScan {
    std::vector<DeletedFile> files;  // allocated_bytes descending
    size_t processes_examined = 0;
    size_t fds_examined = 0;
    // Some were not looked at (max_fds reached) or not returned (max_files,
    // max_holders_per_file): the list is a lower bound.
    bool truncated = false;
    // Processes whose descriptors could not be read (EACCES without root):
    // their files are missing from the list.
    size_t processes_unreadable = 0;
    std::vector<std::string> notes;  // what could not be read, in words
};

// Deleted regular files (st_nlink == 0, read through /proc/PID/fd/N) still
// open in any process under `proc_root`, one entry per (dev, inode) with every
// holder. `on_device` (kernel dev_t): only files on the devices it accepts;
// empty: all. Processes and descriptors that vanish mid-scan are skipped:
// ordinary. Never throws.
DeletedFilesScan find_deleted_open_files(const std::string &proc_root = "/proc",
                                         const std::function<bool(uint32_t dev)> &on_device = {},
                                         const DeletedFilesLimits &limits = {});

}  // namespace diskwatch
