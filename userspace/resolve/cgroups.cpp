#include "resolve/cgroups.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <system_error>

namespace diskwatch {

namespace fs = std::filesystem;

CgroupResolver::CgroupResolver(std::string cgroup2_mount) : mount_(std::move(cgroup2_mount))
{
    rescan();
}

void CgroupResolver::rescan()
{
    last_rescan_ = std::chrono::steady_clock::now();
    ++rescans_;
    paths_.clear();
    struct stat st {};
    if (mount_.empty() || ::stat(mount_.c_str(), &st) != 0)
        return;
    paths_[st.st_ino] = "/";
    std::error_code ec;
    fs::recursive_directory_iterator it(mount_, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        // Only directories are cgroups; do not follow symlinks out of the tree.
        if (!it->is_directory(ec) || it->is_symlink(ec))
            continue;
        if (::lstat(it->path().c_str(), &st) != 0)
            continue;
        paths_[st.st_ino] = "/" + fs::relative(it->path(), mount_, ec).string();
    }
}

std::optional<std::string> CgroupResolver::path_of(uint64_t cgroup_id)
{
    if (auto it = paths_.find(cgroup_id); it != paths_.end())
        return it->second;
    // New cgroups appear all the time (containers, transient units); re-walk,
    // but not more than a few times a second however many ids are unknown.
    if (std::chrono::steady_clock::now() - last_rescan_ > std::chrono::milliseconds(200)) {
        rescan();
        if (auto it = paths_.find(cgroup_id); it != paths_.end())
            return it->second;
    }
    return std::nullopt;
}

std::optional<uint64_t> CgroupResolver::id_of(const std::string &relative_path) const
{
    struct stat st {};
    const std::string full = relative_path == "/" ? mount_ : mount_ + relative_path;
    if (::stat(full.c_str(), &st) != 0)
        return std::nullopt;
    return static_cast<uint64_t>(st.st_ino);
}

std::optional<std::string> cgroup2_path_of_process(int pid, const std::string &proc_root)
{
    std::ifstream in(proc_root + "/" + std::to_string(pid) + "/cgroup");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("0::", 0) == 0)
            return line.substr(3);
    return std::nullopt;
}

}  // namespace diskwatch
