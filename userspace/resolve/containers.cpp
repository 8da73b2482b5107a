#include "resolve/containers.h"

#include <sys/stat.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "resolve/kernel_files.h"
#include "resolve/workloads.h"

namespace diskwatch {

namespace {

// A config.v2.json is a few KiB; a bigger one is not Docker's, and reading it
// whole would let whoever wrote it take the agent's memory.
constexpr size_t kConfigMaxBytes = size_t{4} << 20;
// containers.json lists every container of the host.
constexpr size_t kStorageMaxBytes = size_t{16} << 20;

// Names and labels are short; whoever writes the runtime's directory could
// make them megabytes, times every cached id.
constexpr size_t kFieldMaxBytes = 1024;

std::string string_at(const nlohmann::json &object, const char *key)
{
    if (!object.is_object())
        return {};
    const auto it = object.find(key);
    if (it == object.end() || !it->is_string())
        return {};
    std::string value = it->get<std::string>();
    if (value.size() > kFieldMaxBytes)
        value.resize(kFieldMaxBytes);  // may cut a UTF-8 sequence: put_name then gives <key>_b64
    return value;
}


}  // namespace

std::optional<ContainerInfo> parse_docker_config(std::string_view text)
{
    // Never throws: a container's config is written by dockerd, but the
    // directory is only as trustworthy as whoever can write under it.
    const auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object())
        return std::nullopt;
    ContainerInfo info;
    info.name = string_at(doc, "Name");
    if (!info.name.empty() && info.name.front() == '/')
        info.name.erase(0, 1);
    info.image_id = string_at(doc, "Image");
    if (const auto config = doc.find("Config"); config != doc.end() && config->is_object()) {
        info.image = string_at(*config, "Image");
        if (const auto labels = config->find("Labels"); labels != config->end() && labels->is_object()) {
            info.compose_project = string_at(*labels, "com.docker.compose.project");
            info.compose_service = string_at(*labels, "com.docker.compose.service");
        }
    }
    return info;
}

std::optional<ContainerInfo> parse_containers_storage(std::string_view text, const std::string &id)
{
    const auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!doc.is_array())
        return std::nullopt;
    for (const auto &entry : doc) {
        if (string_at(entry, "id") != id)
            continue;
        ContainerInfo info;
        if (const auto names = entry.find("names");
            names != entry.end() && names->is_array() && !names->empty() && names->front().is_string())
            info.name = names->front().get<std::string>();
        info.image_id = string_at(entry, "image");
        // "metadata" is itself JSON, in a string: podman's and CRI-O's own
        // record of the image the user named.
        const auto metadata = nlohmann::json::parse(string_at(entry, "metadata"), nullptr, false);
        info.image = string_at(metadata, "image-name");
        return info;
    }
    return std::nullopt;
}

std::shared_ptr<const ContainerInfo> ContainerResolver::read(const std::string &id, const std::string &runtime)
{
    // The container may go (and its directory with it) while we read: a
    // failed read is a miss, like a missing file.
    if ((runtime == "docker" || runtime == "kubernetes") && !roots_.docker.empty()) {
        const auto config = read_state_file(roots_.docker + "/containers/" + id + "/config.v2.json", kConfigMaxBytes);
        if (config.ok())
            if (auto info = parse_docker_config(config.text))
                return std::make_shared<const ContainerInfo>(std::move(*info));
    }
    if ((runtime == "podman" || runtime == "cri-o") && !roots_.containers_storage.empty()) {
        const auto storage =
            read_state_file(roots_.containers_storage + "/overlay-containers/containers.json", kStorageMaxBytes);
        if (storage.ok())
            if (auto info = parse_containers_storage(storage.text, id))
                return std::make_shared<const ContainerInfo>(std::move(*info));
    }
    // containerd keeps its containers in a bolt database (meta.db): not read.
    return nullptr;
}

std::shared_ptr<const ContainerInfo> ContainerResolver::lookup(const std::string &container_id,
                                                               const std::string &runtime)
{
    if (container_id.empty())
        return nullptr;
    const std::string key = runtime + ":" + container_id;
    {
        std::lock_guard lock(mutex_);
        if (auto it = cache_.find(key); it != cache_.end() &&
                                        std::chrono::steady_clock::now() - it->second.read_at < reread_after_) {
            order_.splice(order_.begin(), order_, it->second.where);
            return it->second.info;
        }
    }
    // Read outside the lock: the enforcer's protection check must not wait
    // on a slow disk behind the monitor's refresh.
    auto info = read(container_id, runtime);
    std::lock_guard lock(mutex_);
    ++reads_;
    const auto now = std::chrono::steady_clock::now();
    if (auto it = cache_.find(key); it != cache_.end()) {
        if (now - it->second.read_at < reread_after_)
            return it->second.info;  // another thread read it meanwhile
        it->second.info = info;      // read again (a rename)
        it->second.read_at = now;
        order_.splice(order_.begin(), order_, it->second.where);
        return info;
    }
    while (cache_.size() >= capacity_) {
        cache_.erase(order_.back());
        order_.pop_back();
    }
    order_.push_front(key);
    cache_.emplace(key, Entry{info, order_.begin(), now});
    return info;
}

std::shared_ptr<const ContainerInfo> ContainerResolver::lookup_cgroup(const std::string &cgroup_path)
{
    const CgroupWorkload workload = describe_cgroup(cgroup_path);
    if (workload.container_id.empty())
        return nullptr;
    std::string mount;
    {
        std::lock_guard lock(mutex_);
        mount = roots_.cgroup_mount;
    }
    if (!mount.empty()) {
        struct stat st {};
        if (::lstat((mount + workload.container_cgroup).c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
            return nullptr;  // gone, or made by someone other than root: not the runtime's
    }
    return lookup(workload.container_id, workload.runtime);
}

void ContainerResolver::set_cgroup_mount(std::string mount_point)
{
    std::lock_guard lock(mutex_);
    roots_.cgroup_mount = std::move(mount_point);
}

size_t ContainerResolver::cached() const
{
    std::lock_guard lock(mutex_);
    return cache_.size();
}

uint64_t ContainerResolver::reads() const
{
    std::lock_guard lock(mutex_);
    return reads_;
}

}  // namespace diskwatch
