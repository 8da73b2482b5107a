#include "vocabulary/cgroup_workload.h"

#include <cctype>
#include <vector>

namespace diskwatch {

namespace {

bool ends_with(std::string_view text, std::string_view suffix)
{
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool starts_with(std::string_view text, std::string_view prefix)
{
    return text.substr(0, prefix.size()) == prefix;
}

bool is_container_id(std::string_view text)
{
    if (text.size() != 64)
        return false;
    for (char c : text)
        if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c)))
            return false;
    return true;
}

// Unit types a process can run in (slices only group them).
bool is_unit_name(std::string_view component)
{
    for (std::string_view suffix : {".service", ".scope", ".socket", ".mount", ".swap", ".timer"})
        if (ends_with(component, suffix) && component.size() > suffix.size())
            return true;
    return false;
}

std::vector<std::string_view> split_path(std::string_view path)
{
    std::vector<std::string_view> parts;
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string_view::npos)
            end = path.size();
        if (end > start)
            parts.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    return parts;
}

// A container id in one path component, and the runtime its prefix names.
bool container_in_component(std::string_view component, std::string_view parent, CgroupWorkload &out)
{
    // "<prefix>-<id>.scope" (systemd driver), and "<prefix>-<id>" as the
    // cgroupfs driver of podman (/libpod_parent/libpod-<id>) and CRI-O
    // (/kubepods/<qos>/pod<uid>/crio-<id>) name it. The prefix starts the
    // component: "evil-docker-<id>.scope" names no container.
    struct Prefix {
        std::string_view prefix;
        std::string_view runtime;
    };
    static const Prefix prefixes[] = {{"docker-", "docker"}, {"cri-containerd-", "containerd"}, {"crio-", "cri-o"},
                                      {"libpod-", "podman"},  {"nerdctl-", "containerd"}};
    const std::string_view stem = ends_with(component, ".scope") ? component.substr(0, component.size() - 6) : component;
    for (const auto &p : prefixes)
        if (starts_with(stem, p.prefix) && is_container_id(stem.substr(p.prefix.size()))) {
            out.container_id = std::string(stem.substr(p.prefix.size()));
            out.runtime = std::string(p.runtime);
            return true;
        }
    // "<slice>:cri-containerd:<id>" (containerd's nested systemd form)
    if (size_t colon = component.rfind(':'); colon != std::string_view::npos) {
        const std::string_view id = component.substr(colon + 1);
        if (is_container_id(id)) {
            out.container_id = std::string(id);
            out.runtime = component.find(":cri-containerd:") != std::string_view::npos ? "containerd"
                          : component.find(":crio:") != std::string_view::npos       ? "cri-o"
                                                                                      : "containerd";
            return true;
        }
    }
    // bare id (cgroupfs driver): /docker/<id>, /kubepods/<qos>/pod<uid>/<id>
    if (is_container_id(component)) {
        out.container_id = std::string(component);
        out.runtime = parent == "docker" ? "docker" : "kubernetes";
        return true;
    }
    return false;
}

std::string pod_uid_of(std::string_view component)
{
    // kubepods-burstable-pod<uid with _>.slice, or pod<uid> (cgroupfs)
    size_t at = component.rfind("pod");
    if (at == std::string_view::npos)
        return {};
    std::string_view rest = component.substr(at + 3);
    if (ends_with(rest, ".slice"))
        rest = rest.substr(0, rest.size() - 6);
    if (rest.size() != 36)
        return {};
    std::string uid(rest);
    for (char &c : uid)
        if (c == '_')
            c = '-';
    return uid;
}

}  // namespace

CgroupWorkload describe_cgroup(std::string_view cgroup_path)
{
    CgroupWorkload workload;
    const auto parts = split_path(cgroup_path);
    for (size_t i = 0; i < parts.size(); ++i) {
        const std::string_view part = parts[i];
        if (is_unit_name(part))
            workload.unit = std::string(part);  // the innermost wins
        if (starts_with(part, "kubepods") || starts_with(part, "pod")) {
            if (auto uid = pod_uid_of(part); !uid.empty())
                workload.pod_uid = uid;
        }
        // The outermost container wins: whatever is nested inside a
        // container's cgroup is that container's, even a sub-cgroup named
        // after another container (a spoof of its name and protection).
        CgroupWorkload found;
        if (workload.container_id.empty() &&
            container_in_component(part, i > 0 ? parts[i - 1] : std::string_view{}, found)) {
            workload.container_id = found.container_id;
            workload.runtime = found.runtime;
            workload.container_cgroup =
                std::string(cgroup_path.substr(0, static_cast<size_t>(part.data() - cgroup_path.data()) + part.size()));
        }
    }
    return workload;
}

}  // namespace diskwatch
