#include "resolve/containers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <vector>

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

// A task's OCI spec is a few KiB to some tens (mounts, seccomp profile).
constexpr size_t kSpecMaxBytes = size_t{1} << 20;
// containerd namespaces ("default", "k8s.io", "moby", ...) are few; a state
// directory with more is not scanned past this many.
constexpr size_t kMaxNamespaces = 64;

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


// The namespace directories of containerd's runtime-v2 task state: real
// directories only (no symlink is followed out of the state directory), at
// most kMaxNamespaces of them, in no promised order.
std::vector<std::string> containerd_namespaces(const std::string &tasks)
{
    std::vector<std::string> names;
    DIR *dir = ::opendir(tasks.c_str());
    if (!dir)
        return names;
    while (names.size() < kMaxNamespaces) {
        const dirent *entry = ::readdir(dir);
        if (!entry)
            break;
        const std::string name = entry->d_name;
        if (name == "." || name == "..")
            continue;
        struct stat st {};
        if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue;
        names.push_back(name);
    }
    ::closedir(dir);
    return names;
}

// An id that is one path component (never "..", never with a '/'): the
// resolver's ids come from cgroup names, which anyone with a delegated
// subtree can choose.
bool plain_component(const std::string &id)
{
    return !id.empty() && id != "." && id != ".." && id.find('/') == std::string::npos &&
           id.find('\0') == std::string::npos;
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

std::optional<ContainerInfo> parse_containerd_spec(std::string_view text)
{
    const auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object())
        return std::nullopt;
    ContainerInfo info;
    const auto annotations = doc.find("annotations");
    if (annotations == doc.end() || !annotations->is_object())
        return info;  // a task with no annotations (ctr run without any): the id is all there is
    // The CRI plugin's (Kubernetes) first, then nerdctl's: nerdctl copies its
    // own "nerdctl/" labels into the spec's annotations.
    info.name = string_at(*annotations, "io.kubernetes.cri.container-name");
    if (info.name.empty())
        info.name = string_at(*annotations, "nerdctl/name");
    info.image = string_at(*annotations, "io.kubernetes.cri.image-name");
    // nerdctl compose keeps these as container labels, which nerdctl does not
    // copy into the spec; read when someone put them there as annotations.
    info.compose_project = string_at(*annotations, "com.docker.compose.project");
    info.compose_service = string_at(*annotations, "com.docker.compose.service");
    return info;
}

std::shared_ptr<const ContainerInfo> ContainerResolver::read_containerd(const std::string &id) const
{
    if (roots_.containerd_state.empty() || !plain_component(id))
        return nullptr;
    // <state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json: the
    // bundle of a running task. The namespace is not in the cgroup path: try
    // each (an id is unique within a namespace; the first found wins).
    const std::string tasks = roots_.containerd_state + "/io.containerd.runtime.v2.task";
    for (const auto &ns : containerd_namespaces(tasks)) {
        const auto spec = read_state_file(tasks + "/" + ns + "/" + id + "/config.json", kSpecMaxBytes);
        if (!spec.ok())
            continue;
        if (auto info = parse_containerd_spec(spec.text))
            return std::make_shared<const ContainerInfo>(std::move(*info));
    }
    return nullptr;
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
    // containerd's own containers (ctr, nerdctl, the Kubernetes CRI plugin):
    // their metadata is in a bolt database (meta.db), not read; the running
    // task's OCI spec carries the annotations that name them.
    if (runtime == "containerd" || runtime == "kubernetes" || runtime == "docker")
        return read_containerd(id);
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
