// Who must never be throttled or killed: the policy's protect list, plus the
// agent itself, PID 1 and kernel threads, always. protect.exe is matched by
// what the file is (actions/protected_exes.h), not by the path a process shows.
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "actions/protected_exes.h"
#include "resolve/containers.h"
#include "rules/policy.h"
#include "rules/rule_engine.h"

namespace diskwatch {

class Protection {
public:
    // containers: what protect.container, .image, .compose_project and
    // .compose_service are matched against (a process's cgroup names its
    // container); null: those keys protect only subjects that carry the names.
    Protection(const ProtectList &list, pid_t agent_pid, std::string cgroup2_mount,
               ProtectedExes::Options exe_options = ProtectedExes::Options{},
               std::shared_ptr<ContainerResolver> containers = nullptr)
        : list_(list), agent_pid_(agent_pid), cgroup2_mount_(std::move(cgroup2_mount)),
          exes_(list.exe, std::move(exe_options)), containers_(std::move(containers))
    {
    }

    // A reload: the new list; the identities remembered for executables that
    // stay protected are kept. Thread-safe with the readers below.
    void set_list(const ProtectList &list);
    // Resolves protect.exe on the host again (at most once a second; the
    // agent's loop calls it at every evaluation, so an in-place upgrade is
    // seen within a second and the old file stays protected).
    void refresh(double now_s) { exes_.refresh(now_s); }

    // Why this process is protected (e.g. "comm sshd matches protect.comm"),
    // or nullopt. Reads /proc for what it is not given. `exe` is not used for
    // protect.exe (the file /proc/PID/exe is, by device and inode).
    std::optional<std::string> process_reason(pid_t pid, const std::string &comm, const std::string &exe,
                                              const std::string &cgroup) const;
    // A subject: a process, or a cgroup (protected when it or any cgroup
    // below it matches protect.cgroup or was protected from top, or any
    // process in that subtree is protected: acting on the cgroup would act
    // on them all; cgroup.kill kills the whole subtree).
    std::optional<std::string> subject_reason(const Subject &subject) const;

    // An operator's `protect` from top (the control socket's `act`): this
    // subject is protected until the agent restarts, `why` its reason. A
    // process is the very one (its start time: never a later process that
    // takes its pid); a cgroup, by path.
    void protect_until_restart(const Subject &subject, const std::string &why);

    // A subtree larger than this is not walked: the subject counts as
    // protected (a cgroup kill must never reach what was not checked).
    static constexpr size_t kMaxSubtreeCgroups = 4096;

private:
    ProtectList list_copy() const
    {
        std::lock_guard lock(mutex_);
        return list_;
    }

    // "container web matches protect.container web*", or nullopt.
    static std::optional<std::string> container_reason(const ProtectList &list, const ContainerInfo &info);

    mutable std::mutex mutex_;  // list_, requested_*
    ProtectList list_;
    std::map<pid_t, std::pair<double, std::string>> requested_processes_;  // pid -> (start, why)
    std::map<std::string, std::string> requested_cgroups_;                 // path -> why
    pid_t agent_pid_;
    std::string cgroup2_mount_;
    ProtectedExes exes_;
    std::shared_ptr<ContainerResolver> containers_;
};

// PF_KTHREAD in /proc/<pid>/stat's flags; false when the stat is unreadable.
bool is_kernel_thread(pid_t pid, const std::string &proc_root = "/proc");

}  // namespace diskwatch
