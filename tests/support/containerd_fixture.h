// Test support: a private containerd for one test, and gone after it however
// the test ends. Never the machine's containerd: its own --root and --state,
// its own socket, all under a /tmp/dw-containerd-<owner tag>-* directory, a
// config of its own with the CRI plugin disabled (no Kubernetes needed), and
// its containers below a top-level cgroup named with the owner tag, so the
// stale-fixture sweep (support/stale_fixtures.h) finds all of it if the test
// binary is killed (containerd and its shims carry DW_TEST_OWNER). Containers
// run from a busybox-static root filesystem (`ctr run --rootfs`) on a loop
// ext4 of the fixture's own: no image, no registry.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/scratch.h"

namespace diskwatch::test {

class ContainerdDaemon {
public:
    // Starts containerd and waits until `ctr version` answers; throws
    // std::runtime_error (with containerd's log) when it cannot.
    explicit ContainerdDaemon(size_t disk_mib = 256);
    // Kills and deletes every task and container it started, stops containerd
    // (SIGTERM, a wait, SIGKILL), kills the shims that outlive it, kills what
    // is left in its cgroups, unmounts the bundles' rootfs binds, and then the
    // loop disk and directories go.
    ~ContainerdDaemon();
    ContainerdDaemon(const ContainerdDaemon &) = delete;
    ContainerdDaemon &operator=(const ContainerdDaemon &) = delete;

    const std::string &state_dir() const { return state_; }   // its --state: --containerd-state
    const std::string &address() const { return address_; }  // its socket
    const LoopMount &disk() const { return *disk_; }         // the containers' root filesystems live here
    // The top-level cgroup (v2 path, as ebpf-diskwatch reports it) its containers go below.
    std::string cgroup_top() const { return "/" + cgroup_name_; }

    // `ctr --address <socket> args...`; the exit status, output in *output.
    int ctr(const std::vector<std::string> &args, std::string *output = nullptr,
            std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

    struct Container {
        std::string id;         // 64 hex digits
        std::string cgroup;     // its cgroup, relative to the v2 root
        std::string rootfs;     // its root filesystem on the fixture's disk
        std::string ns;         // containerd namespace
    };
    // `ctr -n ns run -d --null-io --annotation k=v... --cgroup <cgroup> --rootfs <fresh busybox root> <id>
    // /bin/sh -c script`, the cgroup `/<top>/kubepods/besteffort/pod<uid>/<id>` (the cgroupfs driver's form
    // of a Kubernetes container). Throws when ctr fails.
    Container run(const std::string &ns, const std::map<std::string, std::string> &annotations,
                  const std::string &script);
    // The task's init pid (its bundle's init.pid), 0 when it has none (gone).
    int pid_of(const Container &container) const;
    // True while the task's init process runs.
    bool running(const Container &container) const;
    // containerd's own log so far (for failure messages).
    std::string log() const;

private:
    std::string dir_;
    std::unique_ptr<LoopMount> disk_;
    std::string root_, state_, address_, ctr_;
    std::string cgroup_name_;
    pid_t containerd_ = -1;
    std::vector<Container> started_;
    void kill_shims();
    void tear_down();
};

// A private containerd, or nullptr when this machine cannot run one: then
// under CI=true the calling test FAILS, elsewhere it is skipped with a warning
// that says why. Never skips silently.
std::unique_ptr<ContainerdDaemon> start_containerd_or_skip(size_t disk_mib = 256);

}  // namespace diskwatch::test
