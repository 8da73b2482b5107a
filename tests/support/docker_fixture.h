// Test support: a private Docker engine for one test, and gone after it
// however the test ends. Never the machine's dockerd: its own data root on a
// loop-mounted ext4 (so a container flooding its writable layer fills that
// small disk, never the machine's /), its own exec root, pid file and unix
// socket under a /tmp/dw-docker-<owner tag>-* directory, no iptables and no
// bridge (no systemd needed), and its containers below a cgroup parent named
// with the owner tag: the stale-fixture sweep (support/stale_fixtures.h)
// finds all of it if the test binary is killed. Images are imported from
// busybox-static, never pulled.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/scratch.h"

namespace diskwatch::test {

class DockerDaemon {
public:
    // Starts dockerd and waits until it answers; throws std::runtime_error
    // (with dockerd's log) when it cannot.
    explicit DockerDaemon(size_t data_root_mib = 384);
    // Removes every container, stops dockerd (SIGTERM, a wait, SIGKILL),
    // kills what is left in its cgroups, unmounts what it mounted, and then
    // the loop disk and directories go.
    ~DockerDaemon();
    DockerDaemon(const DockerDaemon &) = delete;
    DockerDaemon &operator=(const DockerDaemon &) = delete;

    // The loop ext4 that holds the data root (and the data root below it).
    const LoopMount &disk() const { return *disk_; }
    std::string data_root() const { return disk_->path() + "/docker"; }
    const std::string &host() const { return host_; }  // unix://<dir>/docker.sock
    const std::string &cli() const { return cli_; }    // the docker CLI used
    // The v2 cgroup path (as ebpf-diskwatch reports it) its containers go below.
    std::string cgroup_parent() const { return cgroup_parent_; }

    // `docker -H <socket> args...`; returns the exit status, output in *output.
    int docker(const std::vector<std::string> &args, std::string *output = nullptr,
               std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;
    // Imports a busybox-static root filesystem as `name` (once per daemon).
    // The image holds /etc/lower.txt (lower_file_bytes of 'L'): a file of the
    // lower layer, for measuring copy-up.
    void import_busybox(const std::string &name, size_t lower_file_bytes = 1 << 20);
    // `docker run -d --network none <args...>`; returns the container's full id.
    std::string run_detached(const std::vector<std::string> &args);
    // Debian's docker-compose (1.29), or "" when it is not installed.
    static std::string compose_path();
    // `docker-compose -H <socket> -p project -f <dir>/project.yml args...`,
    // the file written from `yaml` first; returns the exit status.
    int compose(const std::string &project, const std::string &yaml, const std::vector<std::string> &args,
                std::string *output = nullptr) const;
    // The full id of a compose service's (first) container, "" if none.
    std::string compose_container(const std::string &project, const std::string &service) const;
    // The container's main pid (docker inspect), 0 when not running.
    int pid_of(const std::string &container) const;
    // dockerd's own log so far (for failure messages).
    std::string log() const;

private:
    std::string dir_;
    std::unique_ptr<LoopMount> disk_;
    std::string host_;
    std::string cli_;
    std::string cgroup_name_;    // top-level cgroup, named with the owner tag
    std::string cgroup_parent_;  // "/" + cgroup_name_ + "/docker"
    pid_t dockerd_ = -1;
    void stop_daemon();
    void remove_cgroups();
    void unmount_below(const std::string &path);
};

// Shared by the private-daemon fixtures (dockerd here, containerd in
// containerd_fixture.h).
// Starts argv[0] with argv, stdin /dev/null, stdout and stderr appended to
// log_path (a pipe nobody reads would block the daemon); throws on failure.
pid_t spawn_logged(const std::vector<std::string> &argv, const std::string &log_path);
// True while our child `pid` has not exited (reaps it if it has).
bool child_alive(pid_t pid);
// SIGTERM, `grace` for it to exit, then SIGKILL; reaps it; pid becomes -1.
void stop_child(pid_t &pid, std::chrono::seconds grace);
// cgroup.kill and rmdir (deepest first) of the top-level cgroup `cgroup_name`
// in the v2 hierarchy, and rmdir of its copies in the v1 controllers.
void remove_owned_cgroup(const std::string &cgroup_name);
// Unmounts every mount point below `path` (a prefix), deepest first; a lazy
// detach for what is busy.
void unmount_all_below(const std::string &path);
// A busybox-static root filesystem at `rootfs`: /bin/busybox and its applets
// (sh, dd, cat, ls, sleep, ...), /etc/lower.txt of lower_file_bytes 'L', and
// empty /tmp /data /proc /sys /dev.
void write_busybox_rootfs(const std::string &rootfs, size_t lower_file_bytes);

// A private dockerd, or nullptr when this machine cannot run one: then
// under CI=true the calling test FAILS, elsewhere it is skipped with a warning
// that says why. Never skips silently.
std::unique_ptr<DockerDaemon> start_docker_or_skip(size_t data_root_mib = 384);

}  // namespace diskwatch::test
