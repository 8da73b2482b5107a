#include "resolve/workloads.h"

#include "resolve/containers.h"
#include "resolve/kernel_files.h"

namespace diskwatch {

std::optional<std::string> ContainerNames::name_of(const std::string &container_id)
{
    if (container_id.empty())
        return std::nullopt;
    if (auto it = cache_.find(container_id); it != cache_.end())
        return it->second;
    std::optional<std::string> name;
    // The container may go (and its directory with it) while we read.
    const auto config = read_state_file(root_ + "/containers/" + container_id + "/config.v2.json", kKernelFileMaxBytes);
    if (config.ok())
        if (auto info = parse_docker_config(config.text); info && !info->name.empty())
            name = info->name;  // one parser for config.v2.json: resolve/containers.h
    cache_.emplace(container_id, name);
    return name;
}

}  // namespace diskwatch
