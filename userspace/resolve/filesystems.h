// How full a mounted filesystem is, as df reports it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace diskwatch {

struct FilesystemUsage {
    uint64_t size_bytes = 0;       // f_blocks * f_frsize
    uint64_t used_bytes = 0;       // (f_blocks - f_bfree) * f_frsize
    uint64_t available_bytes = 0;  // f_bavail * f_frsize: what unprivileged writers can still use
    // df's Use%: used / (used + available), so the root-reserved blocks count as full.
    double used_pct() const;
};

// statvfs(2) of a mount point; nullopt when it fails (unmounted meanwhile).
std::optional<FilesystemUsage> read_filesystem_usage(const std::string &mount_point);

}  // namespace diskwatch
