// Mount table: which mount point and filesystem a device's bytes land on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace diskwatch {

// A device number as the kernel keeps it inside (dev_t: major << 20 | minor),
// which is what the BPF side records from super_block->s_dev.
struct DeviceNumber {
    uint32_t major = 0;
    uint32_t minor = 0;

    static DeviceNumber from_kernel(uint32_t kernel_dev) { return {kernel_dev >> 20, kernel_dev & 0xfffff}; }
    // stat(2)'s st_dev (userspace's dev_t encoding), the minor cut to the
    // kernel's 20 bits as the BPF side sees it.
    static DeviceNumber from_stat(uint64_t st_dev);
    uint32_t to_kernel() const { return (major << 20) | minor; }
    std::string to_string() const;  // "major:minor", as mountinfo and lsblk print it
    bool operator==(const DeviceNumber &) const = default;
};

// One line of /proc/<pid>/mountinfo (see proc(5)).
struct MountEntry {
    int mount_id = 0;
    int parent_id = 0;
    DeviceNumber dev;
    std::string root;         // the path inside the filesystem that is mounted here
    std::string mount_point;  // octal escapes (\040 ...) decoded
    std::vector<std::string> mount_options;  // per-mount: rw/ro, nosuid, ...
    std::string fstype;
    std::string source;
    std::vector<std::string> super_options;
};

// Undoes mountinfo's \ooo escapes (of paths, and of option values, where a
// comma in a path is \054 so that it never splits the option list).
std::string decode_mountinfo_escapes(std::string_view field);

// Parses mountinfo text. Malformed lines are skipped and counted in
// *skipped_lines (when given): a partial table beats none.
std::vector<MountEntry> parse_mountinfo(std::string_view text, size_t *skipped_lines = nullptr);

// Mounts left out of the mount list and the /metrics mount series unless asked
// for (--all-mounts), as node_exporter's filesystem collector leaves them out
// by default (its fs-types-exclude and mount-points-exclude): the kernel's
// own trees (proc, sysfs, cgroup, ...), container roots (overlay: their bytes
// count against the filesystem of the upper layer, see resolve/overlay.h),
// read-only images (squashfs, erofs, iso9660), automount points, devtmpfs,
// and what container engines mount below their data roots
// (/var/lib/docker/..., /var/lib/containers/storage/..., and each container's
// /dev/shm tmpfs at <data root>/containers/<id>/mounts/shm whatever the root).
bool hidden_by_default(std::string_view fstype, std::string_view mount_point);

class MountTable {
public:
    MountTable() = default;
    explicit MountTable(std::vector<MountEntry> entries) : entries_(std::move(entries)) {}

    // Reads /proc/self/mountinfo (or the given file).
    static MountTable load(const std::string &path = "/proc/self/mountinfo");

    // The mount a device is best known by: the first mount of the whole
    // filesystem (root "/") in mount order, else the first bind mount of it.
    const MountEntry *find_by_device(DeviceNumber dev) const;
    const MountEntry *find_by_mount_point(std::string_view mount_point) const;
    // The cgroup v2 hierarchy's mount ("cgroup2"); on hybrid hosts it is
    // /sys/fs/cgroup/unified, on pure v2 hosts /sys/fs/cgroup.
    const MountEntry *find_cgroup2() const;
    // False when a later mount on the same path hides this one.
    bool is_visible(const MountEntry &entry) const { return find_by_mount_point(entry.mount_point) == &entry; }
    const std::vector<MountEntry> &entries() const { return entries_; }

private:
    std::vector<MountEntry> entries_;
};

}  // namespace diskwatch
