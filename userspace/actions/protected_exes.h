// protect.exe by identity, not by claim (issue 16): a protected executable is
// the file the host has at the protected path (device and inode, resolved from
// the host's root, /proc/1/root, so that neither the agent's own private mount
// namespace nor a user's can change what it names), and a process is spared
// when the file it runs (stat of /proc/PID/exe) is that file. A path string is
// not enough: a user in their own user and mount namespace can mount a tmpfs
// over the protected directory and run anything from there under the
// protected path.
//
// An in-place upgrade (a new file renamed over the path) leaves running
// processes on the old, now deleted, inode: every identity a protected path
// has had while the agent ran is remembered (bounded), so they stay protected.
// For a process on a file replaced before the agent saw it, see
// exe_protection_reason().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace diskwatch {

// A file, as long as it exists: its device and inode, and its birth time
// (statx STATX_BTIME, which no user can set). An inode number is reused once
// its file is gone (a replaced version no process runs): the birth time tells
// the newcomer apart. Where the filesystem keeps no birth time (0), the
// remembered file is held open instead (ProtectedFile::held), so its inode
// cannot be reused while it is remembered.
struct FileIdentity {
    uint64_t dev = 0;
    uint64_t ino = 0;
    int64_t birth_ns = 0;  // 0: the filesystem does not say
    bool operator<(const FileIdentity &other) const
    {
        if (dev != other.dev)
            return dev < other.dev;
        return ino != other.ino ? ino < other.ino : birth_ns < other.birth_ns;
    }
    bool operator==(const FileIdentity &other) const
    {
        return dev == other.dev && ino == other.ino && birth_ns == other.birth_ns;
    }
};

// What a process runs: the file behind /proc/PID/exe.
struct ExeFacts {
    FileIdentity identity;
    uint32_t owner_uid = 0;
    uint32_t mode = 0;
    std::string path;                 // readlink of /proc/PID/exe, " (deleted)" and all
    bool host_user_namespace = false; // in the agent's user namespace (the host's: BPF loads only there)
};

// A file a protect.exe pattern named, now or earlier while the agent ran.
struct ProtectedFile {
    std::string pattern;  // the protect.exe entry
    std::string path;     // the host path it resolved to
    uint32_t owner_uid = 0;
    bool current = false;  // the path names this file now (false: replaced since)
    std::shared_ptr<const int> held;  // an O_PATH descriptor, where the identity has no birth time
};

// The decision, from facts alone (unit-tested without processes):
//  1. the process runs a file a protect.exe pattern names now: protected;
//  2. it runs a file the pattern named earlier while the agent ran (replaced
//     in place since): protected;
//  3. it runs a deleted file (an upgrade the agent did not see: it started
//     before the agent, or the file was replaced twice within one rescan) that
//     was at a protected path ("PATH (deleted)"), on the same filesystem and
//     with the same owner as the file the path names now, not writable by
//     group or others, and the process is in the host's user namespace (where
//     only root can change what a path names: an unprivileged user needs a
//     user namespace of their own to mount anything): protected;
//  4. anything else (another file at the protected path in some mount
//     namespace, a copy, a name): not protected.
std::optional<std::string> exe_protection_reason(const ExeFacts &exe,
                                                 const std::map<FileIdentity, ProtectedFile> &files);

class ProtectedExes {
public:
    struct Options {
        pid_t host_pid = 1;  // whose root is "the host's" (unit tests: their own)
        std::string proc_root = "/proc";
        size_t max_remembered = 4096;      // identities kept (the oldest replaced ones go first)
        size_t max_files_per_pattern = 4096;
        double rescan_s = 1.0;             // refresh() looks again at most this often
    };
    ProtectedExes() : ProtectedExes({}, Options{}) {}
    ProtectedExes(std::vector<std::string> patterns, Options options);

    // New patterns (a reload): identities remembered for paths that are still
    // protected are kept; the files are resolved at once.
    void set_patterns(std::vector<std::string> patterns);
    // Resolves the patterns from the host's root again when rescan_s has
    // passed (force: now). Called from the agent's loop, never from the
    // continuer: the scan runs without the lock that reason() takes.
    void refresh(double now_s, bool force = false);
    // Why this process is protected by protect.exe, or nullopt. Reads only
    // /proc/PID (never the protected paths: a slow filesystem there cannot
    // stall a decision).
    std::optional<std::string> reason(pid_t pid) const;
    size_t remembered() const;
    bool empty() const;

private:
    struct Scan {
        std::map<FileIdentity, ProtectedFile> files;
    };
    Scan scan(const std::vector<std::string> &patterns) const;
    void merge_locked(const Scan &scan);

    Options options_;
    mutable std::mutex mutex_;
    std::vector<std::string> patterns_;
    std::map<FileIdentity, ProtectedFile> files_;
    std::map<FileIdentity, uint64_t> order_;  // when each was last seen current (a counter): eviction order
    uint64_t generation_ = 0;
    double last_scan_s_ = -1e300;
    mutable std::atomic<bool> root_unreachable_said_ {false};
};

// The files of the host (through /proc/<host_pid>/root, every symlink
// resolved inside it) that a protect.exe glob names: `*`, `?` and `[...]`
// match within one path component here; "(?i)" in front: case-insensitive.
// At most `limit` files.
std::vector<std::string> expand_host_glob(int host_root_fd, const std::string &pattern, size_t limit);

}  // namespace diskwatch
