// Test support: real scratch filesystems and cgroups, removed when the test
// ends however it ends (destructors run on REQUIRE failures too).
#pragma once

#include <string>

namespace diskwatch::test {

// A file-backed ext4 (or other mkfs) image, loop-mounted at a fresh directory
// (/tmp/dw-loop-<owner tag>-*: support/stale_fixtures.h).
class LoopMount {
public:
    // size_mib: image size; fstype: "ext4" (mkfs.ext4) or "xfs" (mkfs.xfs).
    LoopMount(size_t size_mib, const std::string &fstype = "ext4");
    ~LoopMount();
    LoopMount(const LoopMount &) = delete;
    LoopMount &operator=(const LoopMount &) = delete;

    const std::string &path() const { return mount_point_; }
    const std::string &device() const { return loop_device_; }
    std::string dev_string() const;  // "major:minor" of the mounted filesystem
    // Detaches the filesystem lazily (MNT_DETACH) while processes may still be
    // writing to it: they keep their open files, the mount point is empty from
    // now on, and the destructor only has the loop device and image to remove.
    void detach();

private:
    std::string workdir_;
    std::string image_;
    std::string mount_point_;
    std::string loop_device_;
    bool mounted_ = false;
};

// A size-limited tmpfs at a fresh directory.
class TmpfsMount {
public:
    explicit TmpfsMount(size_t size_kib);
    ~TmpfsMount();
    TmpfsMount(const TmpfsMount &) = delete;
    TmpfsMount &operator=(const TmpfsMount &) = delete;
    const std::string &path() const { return mount_point_; }

private:
    std::string mount_point_;
    bool mounted_ = false;
};

// A child cgroup in the cgroup v2 hierarchy (found in /proc/self/mountinfo),
// named "<name_prefix>-<owner tag>-<unique>" (support/stale_fixtures.h).
// The destructor kills what is left in it and removes it.
class Cgroup2Child {
public:
    explicit Cgroup2Child(const std::string &name_prefix);
    ~Cgroup2Child();
    Cgroup2Child(const Cgroup2Child &) = delete;
    Cgroup2Child &operator=(const Cgroup2Child &) = delete;

    const std::string &path() const { return path_; }            // absolute, in the cgroup2 mount
    const std::string &relative_path() const { return relative_; }  // as ebpf-diskwatch reports it
    uint64_t id() const;

private:
    std::string path_;
    std::string relative_;
};

// The tracepoint hook family mounts tracefs at /sys/kernel/tracing when it
// is missing; a test that forces that family puts the host back as it was.
class TracefsRestore {
public:
    TracefsRestore();
    ~TracefsRestore();
    TracefsRestore(const TracefsRestore &) = delete;
    TracefsRestore &operator=(const TracefsRestore &) = delete;

private:
    bool was_mounted_;
    std::string marker_;  // /tmp/dw-tracefs-<owner>-*: tracefs is this binary's to unmount
};

// True when this process may load BPF programs. When it may not: under CI
// (CI=true) the calling test FAILs; elsewhere it is skipped with a warning.
bool bpf_tests_can_run();

}  // namespace diskwatch::test
