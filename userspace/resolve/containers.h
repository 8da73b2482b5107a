// What operators call a container: its name, image and Compose project and
// service, read from the runtime's ON-DISK state (docs/containers.md), never
// through its API socket: the agent must not depend on (or be slowed by, or
// trust the timing of) a daemon it may be asked to throttle.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace diskwatch {

struct ContainerInfo {
    std::string name;             // without Docker's leading '/'
    std::string image;            // as the user gave it ("nginx:1.27"), Config.Image
    std::string image_id;         // "sha256:..." (docker's Image); empty when unknown
    std::string compose_project;  // label com.docker.compose.project
    std::string compose_service;  // label com.docker.compose.service
};

// Where the runtimes keep their state. Empty: that runtime is not read.
struct ContainerRoots {
    std::string docker = "/var/lib/docker";             // --docker-root
    std::string containers_storage = "/var/lib/containers/storage";  // podman, CRI-O
    // containerd's --state directory: its runtime-v2 task bundles (the OCI
    // spec of each running task, with its annotations). --containerd-state
    std::string containerd_state = "/run/containerd";
    // The cgroup v2 mount: a container's cgroup is named from the runtime's
    // files only when root made it (see lookup_cgroup). Empty: the monitor's.
    std::string cgroup_mount;
};

// Pure: Docker's config.v2.json text -> what it says; nullopt when the text is
// not a JSON object (corrupt, truncated, hostile). Fields of the wrong type are
// left empty, never trusted.
std::optional<ContainerInfo> parse_docker_config(std::string_view text);
// Pure: containers/storage's overlay-containers/containers.json text -> the
// entry of this id (its first name); nullopt when absent or unparsable.
std::optional<ContainerInfo> parse_containers_storage(std::string_view text, const std::string &id);
// Pure: the OCI runtime spec (config.json) containerd wrote into a task's
// bundle -> what its annotations say: the Kubernetes CRI's
// io.kubernetes.cri.container-name / image-name, nerdctl's nerdctl/name, and
// com.docker.compose.project/service when present. nullopt when the text is
// not a JSON object. Fields absent or of the wrong type are left empty.
std::optional<ContainerInfo> parse_containerd_spec(std::string_view text);

// Cached per container id, misses included (a container with no state on
// disk is not read again each refresh); at most `capacity` ids, the least
// recently used dropped first. A new id is read at once: ids are never
// reused, so a cached answer is never stale for its id. Thread-safe: the
// monitor's refresh and the enforcer's protection check share one.
class ContainerResolver {
public:
    // reread_after: how long a cached answer stands (`docker rename` rewrites a
    // name under the same id).
    explicit ContainerResolver(ContainerRoots roots = {}, size_t capacity = 4096,
                               std::chrono::milliseconds reread_after = std::chrono::seconds(10))
        : roots_(std::move(roots)), capacity_(capacity == 0 ? 1 : capacity), reread_after_(reread_after)
    {
    }
    // runtime as describe_cgroup() names it ("docker", "podman", "cri-o",
    // "containerd", "kubernetes"); nullptr when unknown. Docker's files are
    // read before containerd's for "docker" and "kubernetes" (a bare id below
    // a pod, or any cgroupfs parent): Docker's own containers also run as
    // containerd tasks (namespace moby), and Docker's name wins.
    std::shared_ptr<const ContainerInfo> lookup(const std::string &container_id, const std::string &runtime);
    // The container a cgroup path names, and what is known of it; nullptr
    // unless the directory that names it (its outermost container component)
    // belongs to root. A user with a delegated cgroup subtree (user@.service,
    // a container's own writable cgroupfs) can make a cgroup named
    // docker-<id>.scope after any running container's public id; only root,
    // the runtime, makes the real ones. Without a cgroup mount nothing is
    // checked (tests of pure logic).
    std::shared_ptr<const ContainerInfo> lookup_cgroup(const std::string &cgroup_path);
    void set_cgroup_mount(std::string mount_point);
    const ContainerRoots &roots() const { return roots_; }
    size_t cached() const;
    uint64_t reads() const;  // files read: the cache's misses, for tests

private:
    std::shared_ptr<const ContainerInfo> read(const std::string &id, const std::string &runtime);
    std::shared_ptr<const ContainerInfo> read_containerd(const std::string &id) const;

    ContainerRoots roots_;
    size_t capacity_;
    std::chrono::milliseconds reread_after_;
    mutable std::mutex mutex_;
    std::list<std::string> order_;  // most recently used first
    struct Entry {
        std::shared_ptr<const ContainerInfo> info;
        std::list<std::string>::iterator where;
        std::chrono::steady_clock::time_point read_at;  // read again after a while (a rename)
    };
    std::unordered_map<std::string, Entry> cache_;
    uint64_t reads_ = 0;
};

}  // namespace diskwatch
