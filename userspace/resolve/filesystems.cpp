#include "resolve/filesystems.h"

#include <sys/statvfs.h>

namespace diskwatch {

double FilesystemUsage::used_pct() const
{
    const uint64_t usable = used_bytes + available_bytes;
    if (usable == 0)
        return 0.0;
    return 100.0 * static_cast<double>(used_bytes) / static_cast<double>(usable);
}

std::optional<FilesystemUsage> read_filesystem_usage(const std::string &mount_point)
{
    struct statvfs st {};
    if (::statvfs(mount_point.c_str(), &st) != 0)
        return std::nullopt;
    FilesystemUsage usage;
    usage.size_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
    usage.used_bytes = static_cast<uint64_t>(st.f_blocks - st.f_bfree) * st.f_frsize;
    usage.available_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
    return usage;
}

}  // namespace diskwatch
