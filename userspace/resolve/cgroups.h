// cgroup v2 id -> path, and the cgroup a process is in.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace diskwatch {

// On cgroup v2 a cgroup's id (bpf_get_current_cgroup_id()) is the inode number
// of its directory in the cgroup2 filesystem, so the path of an id is found by
// walking the hierarchy once and re-walking when an unknown id shows up.
class CgroupResolver {
public:
    // cgroup2_mount: the hierarchy's mount point, from MountTable::find_cgroup2().
    explicit CgroupResolver(std::string cgroup2_mount);

    // The path relative to the hierarchy root ("/" for the root cgroup,
    // "/system.slice/foo.service" ...), or nullopt when the id is unknown even
    // after a re-walk (the cgroup was removed before we saw it).
    std::optional<std::string> path_of(uint64_t cgroup_id);
    // The id of a path relative to the hierarchy root.
    std::optional<uint64_t> id_of(const std::string &relative_path) const;
    const std::string &mount_point() const { return mount_; }
    size_t rescans() const { return rescans_; }

private:
    void rescan();

    std::string mount_;
    std::unordered_map<uint64_t, std::string> paths_;
    std::chrono::steady_clock::time_point last_rescan_{};
    size_t rescans_ = 0;
};

// The cgroup v2 path of a process, from /proc/<pid>/cgroup's "0::" line.
std::optional<std::string> cgroup2_path_of_process(int pid, const std::string &proc_root = "/proc");

// The pids in <cgroup_dir>/cgroup.procs (cgroup_dir: its full path under the
// cgroup2 mount); empty when the cgroup is gone or the file unreadable. A
// line that is not a pid is skipped.
std::vector<int> cgroup_processes(const std::string &cgroup_dir);

}  // namespace diskwatch
