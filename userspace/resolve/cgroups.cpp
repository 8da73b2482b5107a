#include "resolve/cgroups.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "resolve/kernel_files.h"
#include "resolve/numbers.h"

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
    const auto file = read_kernel_file(proc_root + "/" + std::to_string(pid) + "/cgroup");
    if (!file.ok())
        return std::nullopt;
    const std::string_view text = file.text;
    size_t pos = 0;
    while (pos < text.size()) {
        const size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            return std::nullopt;  // cut short: the line may not be whole
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.substr(0, 3) == "0::")
            return std::string(line.substr(3));
    }
    return std::nullopt;
}

std::vector<int> cgroup_processes(const std::string &cgroup_dir)
{
    std::vector<int> pids;
    const auto file = read_kernel_file(cgroup_dir + "/cgroup.procs");
    const std::string_view text = file.text;
    size_t pos = 0;
    while (pos < text.size()) {
        const size_t end = std::min(text.find('\n', pos), text.size());
        if (auto pid = parse_integer<int>(text.substr(pos, end - pos)); pid && *pid > 0)
            pids.push_back(*pid);
        pos = end + 1;
    }
    return pids;
}

}  // namespace diskwatch
