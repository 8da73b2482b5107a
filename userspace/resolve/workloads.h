// Who, in words: the names of containers, read from disk. The unit and the
// container a cgroup path names: vocabulary/cgroup_workload.h.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>

#include "vocabulary/cgroup_workload.h"  // CgroupWorkload, describe_cgroup

namespace diskwatch {

// Docker container names, read from disk (<docker_root>/containers/<id>/config.v2.json,
// its "Name"), never through the Docker API. Cached per id, misses included.
// The name alone, unbounded cache: the agent and top use ContainerResolver
// (resolve/containers.h), which also gives the image and Compose labels.
class ContainerNames {
public:
    explicit ContainerNames(std::string docker_root = "/var/lib/docker") : root_(std::move(docker_root)) {}
    // The name without Docker's leading '/', or nullopt when not found.
    std::optional<std::string> name_of(const std::string &container_id);

private:
    std::string root_;
    std::unordered_map<std::string, std::optional<std::string>> cache_;
};

}  // namespace diskwatch
