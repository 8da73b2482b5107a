// Test support: what a test binary killed by SIGKILL (a CTest timeout, the
// OOM killer, kill -9) leaves on the machine, found and removed at the start
// of the next test binary.
//
// Every fixture a test binary makes carries its owner tag, "<pid>.<start>"
// (pid and start time in clock ticks, /proc/<pid>/stat field 22, so a reused
// pid is not mistaken for the owner): in the names of its /tmp/dw-* scratch
// directories and of its cgroup v2 children, and as DW_TEST_OWNER in the
// environment of every process it starts. A fixture is stale only when its
// owner has provably exited; those of a test binary still running (another
// worktree's, a parallel CTest test's) are never touched. A forked child that
// never execs shows no DW_TEST_OWNER in /proc/<pid>/environ (that is the
// environment it was exec'd with): the sweep reaches it only through the
// cgroup.kill of a stale cgroup it is in.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace diskwatch::test {

// The environment variable every process a test binary starts inherits.
inline constexpr const char *kOwnerEnvironment = "DW_TEST_OWNER";

// This process's owner tag, "<pid>.<start ticks>".
std::string owner_tag();

// A fresh directory /tmp/<prefix>-<owner tag>-XXXXXX (mkdtemp); prefix
// starts with "dw-" ("dw-loop", "dw-agent"). The sweep removes it, and
// unmounts what is mounted below it, once its owner is gone.
std::string make_owned_temp_dir(const std::string &prefix);

// A name for a cgroup v2 child: "<prefix>-<owner tag>-<unique>".
std::string owned_cgroup_name(const std::string &prefix);

// Puts DW_TEST_OWNER=<owner tag> in this process's environment, so the
// processes it starts from now on carry it. Called by the sweep listener at
// the start of every test run; a test that forks a child which starts
// processes of its own calls it in the child.
void mark_children_as_ours();

// Where the sweep looks; the defaults are the real places.
struct SweepPlaces {
    std::string tmp = "/tmp";
    std::string cgroup2;  // empty: the cgroup v2 mount from /proc/self/mountinfo
    std::string tracefs = "/sys/kernel/tracing";
};

// What one sweep removed, and what it could not (with the reason).
struct SweepReport {
    std::vector<pid_t> processes_killed;
    std::vector<std::string> unmounted;
    std::vector<std::string> loop_devices_detached;
    std::vector<std::string> directories_removed;
    std::vector<std::string> cgroups_removed;
    bool tracefs_unmounted = false;
    std::vector<std::string> failures;
    bool empty() const;
    std::string summary() const;
};

// Removes every fixture whose owner has exited, in this order: thaw its
// cgroups, SIGCONT then SIGKILL its processes (and cgroup.kill), unmount
// what is mounted under its directories (deepest first), detach the loop
// devices backed by images there (LOOP_CLR_FD), remove the directories, rmdir
// the cgroups (deepest first; on a hybrid host also the same names in the
// cgroup v1 controllers, where a private dockerd's containers have copies),
// and unmount tracefs if it mounted it. Syscalls
// only. Needs root; as another user it does nothing.
SweepReport sweep_stale_fixtures(const SweepPlaces &places = {});

// True when the process `tag` names ("<pid>.<start>") has exited: no such
// pid, a zombie, or another process that reused the pid. A malformed tag is
// never stale (the fixture is not ours to judge).
bool owner_is_gone(const std::string &tag);

}  // namespace diskwatch::test
