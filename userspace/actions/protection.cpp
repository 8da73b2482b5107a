#include "actions/protection.h"

#include <filesystem>

#include "resolve/cgroups.h"
#include "resolve/processes.h"

namespace diskwatch {

namespace {
constexpr unsigned long kPfKthread = 0x00200000;  // include/linux/sched.h
}

bool is_kernel_thread(pid_t pid, const std::string &proc_root)
{
    const auto stat = read_process_stat(proc_root + "/" + std::to_string(pid));
    const auto flags = stat ? stat->number(9) : std::nullopt;  // unknown: not known to be one
    return flags && (*flags & kPfKthread) != 0;
}

void Protection::set_list(const ProtectList &list)
{
    {
        std::lock_guard lock(mutex_);
        list_ = list;
    }
    exes_.set_patterns(list.exe);
}

std::optional<std::string> Protection::process_reason(pid_t pid, const std::string &comm, const std::string & /*exe*/,
                                                      const std::string &cgroup) const
{
    if (pid == agent_pid_)
        return "the agent itself";
    if (pid == 1)
        return "PID 1";
    if (pid == 2 || is_kernel_thread(pid))
        return "a kernel thread";
    {
        std::unique_lock lock(mutex_);
        if (auto it = requested_processes_.find(pid); it != requested_processes_.end()) {
            const auto [start, why] = it->second;
            lock.unlock();
            if (read_process_start_boot_s(pid) == start)
                return why;
        }
    }
    const ProtectList list = list_copy();
    for (const auto &pattern : list.comm)
        if (glob_matches(pattern, comm))
            return "comm " + comm + " matches protect.comm " + pattern;
    if (auto reason = exes_.reason(pid))
        return reason;
    for (const auto &pattern : list.cgroup)
        if (!cgroup.empty() && glob_matches(pattern, cgroup))
            return "cgroup " + cgroup + " matches protect.cgroup " + pattern;
    if (containers_ && !cgroup.empty())
        if (const auto info = containers_->lookup_cgroup(cgroup))
            return container_reason(list, *info);
    return std::nullopt;
}

std::optional<std::string> Protection::container_reason(const ProtectList &list, const ContainerInfo &info)
{
    struct Selector {
        const std::vector<std::string> &globs;
        const std::string &value;
        const char *what;
        const char *key;
    };
    const Selector selectors[] = {
        {list.container, info.name, "container", "protect.container"},
        {list.image, info.image, "image", "protect.image"},
        {list.compose_project, info.compose_project, "compose project", "protect.compose_project"},
        {list.compose_service, info.compose_service, "compose service", "protect.compose_service"},
    };
    // As in a rule's match: an unknown value is never matched, not even by "*".
    for (const auto &selector : selectors)
        for (const auto &pattern : selector.globs)
            if (!selector.value.empty() && glob_matches(pattern, selector.value))
                return std::string(selector.what) + " " + selector.value + " matches " + selector.key + " " + pattern;
    return std::nullopt;
}

void Protection::protect_until_restart(const Subject &subject, const std::string &why)
{
    std::lock_guard lock(mutex_);
    if (subject.scope == RuleScope::process)
        requested_processes_[static_cast<pid_t>(subject.pid)] = {subject.start_boot_s, why};
    else
        requested_cgroups_[subject.cgroup] = why;
}

std::optional<std::string> Protection::subject_reason(const Subject &subject) const
{
    // What the rule engine saw of its container, so that a subject is judged
    // by the names its event carries (the resolver is asked again below, by
    // cgroup path, for each process).
    ContainerInfo seen;
    seen.name = subject.container_name;
    seen.image = subject.container_image;
    seen.compose_project = subject.compose_project;
    seen.compose_service = subject.compose_service;
    if (subject.scope == RuleScope::process) {
        if (auto reason = process_reason(static_cast<pid_t>(subject.pid), subject.comm, subject.exe, subject.cgroup))
            return reason;
        return container_reason(list_copy(), seen);
    }
    if (subject.cgroup.empty() || subject.cgroup == "/")
        return std::string("the root cgroup");
    const ProtectList list = list_copy();
    if (auto reason = container_reason(list, seen))
        return reason;
    // The whole subtree, not the cgroup alone: a cgroup-scope kill ends with
    // cgroup.kill, which kills every process below it, and a throttle by
    // io.max holds them all. A protected cgroup or process anywhere below
    // (the agent itself among them, when it runs there) protects the subject.
    std::vector<std::string> cgroups = {subject.cgroup};
    std::error_code error;
    for (auto it = std::filesystem::recursive_directory_iterator(
             cgroup2_mount_ + subject.cgroup, std::filesystem::directory_options::skip_permission_denied, error);
         !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
        if (cgroups.size() >= kMaxSubtreeCgroups)
            return "its subtree has more than " + std::to_string(kMaxSubtreeCgroups) +
                   " cgroups: not all could be checked for protection";
        if (it->is_directory(error))
            cgroups.push_back(subject.cgroup + "/" + it->path().lexically_relative(cgroup2_mount_ + subject.cgroup).string());
    }
    for (const auto &cgroup : cgroups) {
        {
            std::lock_guard lock(mutex_);
            if (auto it = requested_cgroups_.find(cgroup); it != requested_cgroups_.end())
                return cgroup == subject.cgroup ? it->second : "its child cgroup " + cgroup + " is " + it->second;
        }
        for (const auto &pattern : list.cgroup)
            if (glob_matches(pattern, cgroup))
                return (cgroup == subject.cgroup ? "cgroup " : "its child cgroup ") + cgroup +
                       " matches protect.cgroup " + pattern;
        for (const pid_t pid : cgroup_processes(cgroup2_mount_ + cgroup)) {
            auto identity = read_process_identity(pid);
            if (!identity)
                continue;
            if (auto reason = process_reason(pid, identity->comm, identity->exe, cgroup))
                return "its process " + std::to_string(pid) + (cgroup == subject.cgroup ? "" : " in " + cgroup) +
                       " is protected: " + *reason;
        }
    }
    return std::nullopt;
}

}  // namespace diskwatch
