// What an agent holds stopped, frozen or limited, kept on disk (state.json in
// the state dir) so that whoever outlives the agent can let it go: the guard
// the moment the agent dies or hangs, and a restarted agent's reconcile. One
// definition of the file, one release path for both.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "actions/enforcement_vocabulary.h"
#include "rules/rule_engine.h"

namespace diskwatch {

struct HeldState {
    struct Stopped {      // a process paused with SIGSTOP
        pid_t pid = 0;
        double start_boot_s = 0;  // with the pid: the very process (a reused pid is never continued)
        std::string comm;
    };
    struct Limited {      // a cgroup with an io.max write limit
        std::string cgroup_dir;  // absolute (under the cgroup v2 mount)
        std::string dev;         // "MAJ:MIN"
    };
    pid_t agent_pid = 0;
    std::vector<Stopped> stopped;
    std::vector<std::string> frozen;  // absolute cgroup dirs frozen through cgroup.freeze (earlier agents)
    std::vector<Limited> io_max;
    // Absolute cgroup dirs throttled in the kernel: any member may be stopped
    // at its write (which ones changes many times a second, so the file names
    // the cgroup, and a release continues its stopped members).
    std::vector<std::string> stopped_in;

    bool empty() const { return stopped.empty() && frozen.empty() && io_max.empty() && stopped_in.empty(); }
};

// <state_dir>/state.json
std::string held_state_path(const std::string &state_dir);
// Written atomically (temp file + rename). False with the reason.
bool save_held_state(const std::string &state_dir, const HeldState &state, std::string *error);
// nullopt when there is no file; an unreadable file is an error (the scan for
// frozen cgroups still finds what it froze).
std::optional<HeldState> load_held_state(const std::string &state_dir, std::string *error);

// The mark put on a cgroup before it is frozen (its value: the state dir), so
// a freeze newer than the state file is still found by a scan of the tree.
inline constexpr const char *kFrozenXattr = "trusted.ebpf-diskwatch.frozen";

// One thing let go.
struct HeldRelease {
    Mechanism mechanism = Mechanism::sigstop;  // sigstop | cgroup.freeze | io.max
    pid_t pid = 0;          // sigstop
    std::string comm;       // sigstop
    std::string cgroup;     // cgroup.freeze, io.max: the path below the cgroup v2 mount
};

// The subject a release names (process scope for sigstop, else cgroup scope).
Subject released_subject(const HeldRelease &release);

// Lets go of everything `state` lists (SIGCONT through a pidfd checked against
// the start time; every stopped member of a stopped_in cgroup; cgroup.freeze
// 0; io.max wbps=max), and of every cgroup under
// cgroup2_mount that carries this state dir's freeze mark. Idempotent: what
// already runs is not reported. Never throws.
std::vector<HeldRelease> release_held(const std::optional<HeldState> &state, const std::string &state_dir,
                                      const std::string &cgroup2_mount);

}  // namespace diskwatch
