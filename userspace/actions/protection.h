// Who must never be throttled or killed: the policy's protect list, plus the
// agent itself, PID 1 and kernel threads, always.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "rules/policy.h"
#include "rules/rule_engine.h"

namespace diskwatch {

class Protection {
public:
    Protection(ProtectList list, pid_t agent_pid, std::string cgroup2_mount)
        : list_(std::move(list)), agent_pid_(agent_pid), cgroup2_mount_(std::move(cgroup2_mount)) {}

    // Why this process is protected (e.g. "comm sshd matches protect.comm"),
    // or nullopt. Reads /proc for what it is not given.
    std::optional<std::string> process_reason(pid_t pid, const std::string &comm, const std::string &exe,
                                              const std::string &cgroup) const;
    // A subject: a process, or a cgroup (protected when its path matches
    // protect.cgroup or any of its processes is protected: acting on the
    // cgroup would act on them).
    std::optional<std::string> subject_reason(const Subject &subject) const;

private:
    ProtectList list_;
    pid_t agent_pid_;
    std::string cgroup2_mount_;
};

// PF_KTHREAD in /proc/<pid>/stat's flags; false when the stat is unreadable.
bool is_kernel_thread(pid_t pid, const std::string &proc_root = "/proc");

}  // namespace diskwatch
