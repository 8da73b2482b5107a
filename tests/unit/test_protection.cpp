// Who is never acted on, and pidfds that refuse a process that is not the one meant.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "actions/pidfd.h"
#include "actions/protection.h"
#include "resolve/processes.h"

using namespace diskwatch;

TEST_CASE("the agent, PID 1, kernel threads and the protect list are protected", "[actions]")
{
    ProtectList list;
    list.comm = {"sshd", "dock*"};
    list.exe = {"/usr/sbin/*"};
    list.cgroup = {"/system.slice/ssh.service"};
    Protection protection(list, ::getpid(), "/sys/fs/cgroup/unified");
    CHECK(protection.process_reason(::getpid(), "x", "", "") == "the agent itself");
    CHECK(protection.process_reason(1, "init", "", "") == "PID 1");
    CHECK(protection.process_reason(2, "kthreadd", "", "") == "a kernel thread");
    CHECK(is_kernel_thread(2));
    CHECK_FALSE(is_kernel_thread(::getpid()));
    CHECK(protection.process_reason(999999, "dockerd", "", "") == "comm dockerd matches protect.comm dock*");
    // protect.exe is the file, not the path a process shows (test_protected_exes.cpp).
    CHECK_FALSE(protection.process_reason(999999, "x", "/usr/sbin/cron", "").has_value());
    CHECK(protection.process_reason(999999, "x", "", "/system.slice/ssh.service").has_value());
    CHECK_FALSE(protection.process_reason(999999, "suricata", "/usr/bin/suricata", "/x").has_value());

    Subject cgroup;
    cgroup.scope = RuleScope::cgroup;
    cgroup.cgroup = "/";
    CHECK(protection.subject_reason(cgroup) == "the root cgroup");
    cgroup.cgroup = "/system.slice/ssh.service";
    CHECK(protection.subject_reason(cgroup).has_value());
}

TEST_CASE("a pidfd is only opened on the process meant", "[actions]")
{
    const pid_t child = ::fork();
    if (child == 0) {
        ::pause();
        _exit(0);
    }
    REQUIRE(child > 0);
    const auto identity = read_process_identity(child);
    REQUIRE(identity);
    const std::string comm = identity->comm;
    const double started = identity->start_boot_s;
    REQUIRE(started > 0);
    CHECK(started <= boot_now_s());
    const double tick_s = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    std::string error;
    CHECK_FALSE(Pidfd::open(child, "someone-else", 0, &error));
    CHECK(error.find("the pid was reused") != std::string::npos);
    // Same pid and name, another start time: another process (one clock tick
    // is the resolution of /proc/<pid>/stat's start time).
    error.clear();
    CHECK_FALSE(Pidfd::open(child, comm, started - tick_s, &error));
    CHECK(error.find("the pid was reused") != std::string::npos);
    CHECK_FALSE(Pidfd::open(child, comm, started + tick_s, &error));
    CHECK_FALSE(Pidfd::open(child, comm, 1.0, &error));
    CHECK(same_start(started, started + 0.4 * tick_s));
    CHECK_FALSE(same_start(started, started + tick_s));
    auto pidfd = Pidfd::open(child, comm, started, &error);
    INFO(error);
    REQUIRE(pidfd);
    CHECK_FALSE(pidfd->exited());
    CHECK(pidfd->signal(SIGKILL, &error));
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(pidfd->exited());
    CHECK_FALSE(Pidfd::open(child, "", 0, &error));
    CHECK(error.find("pidfd_open") == 0);
}

TEST_CASE("a process whose name holds a newline and parentheses has its start time read all the same",
          "[actions][security]")
{
    // Any user can name their process so; /proc/<pid>/stat then spans two lines.
    const std::string comm = "a)\n(b) 1 2 3";
    const pid_t child = ::fork();
    if (child == 0) {
        ::prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
        for (;;)
            ::pause();
    }
    REQUIRE(child > 0);
    struct Reap {
        pid_t pid;
        ~Reap()
        {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reap {child};
    std::optional<ProcessIdentity> identity;
    for (int i = 0; i < 600 && !(identity && identity->comm == comm); ++i) {
        identity = read_process_identity(child);
        ::usleep(5000);
    }
    REQUIRE(identity);
    CHECK(identity->comm == comm);
    CHECK(identity->start_boot_s > 0);
    CHECK(identity->start_boot_s <= boot_now_s());
    const char state = process_state(child);
    CHECK((state == 'S' || state == 'R'));
    std::string error;
    const bool opened = Pidfd::open(child, comm, identity->start_boot_s, &error).has_value();
    INFO(error);
    CHECK(opened);
}

namespace {

// A cgroup tree of files in a scratch directory, standing in for the cgroup2
// mount: each cgroup a directory, its cgroup.procs listing `pids`.
struct FakeCgroupTree {
    std::string root = "/tmp/dw-fake-cgroups-" + std::to_string(::getpid());
    FakeCgroupTree() { std::filesystem::create_directories(root); }
    ~FakeCgroupTree() { std::filesystem::remove_all(root); }
    void cgroup(const std::string &path, const std::vector<pid_t> &pids) const
    {
        std::filesystem::create_directories(root + path);
        std::ofstream procs(root + path + "/cgroup.procs");
        for (pid_t pid : pids)
            procs << pid << "\n";
    }
};

}  // namespace

TEST_CASE("a cgroup is protected when anything below it is: a child cgroup protected from top or by protect.cgroup, "
          "or a protected process there (cgroup.kill kills the whole subtree)",
          "[actions][protect]")
{
    FakeCgroupTree tree;
    // The writer is this test's child (not protected); the agent (this
    // process, as far as the Protection knows) sits two levels down.
    const pid_t writer = ::fork();
    if (writer == 0) {
        ::pause();
        ::_exit(0);
    }
    REQUIRE(writer > 0);
    tree.cgroup("/jobs", {writer});
    tree.cgroup("/jobs/batch", {writer});
    tree.cgroup("/jobs/batch/agent", {::getpid()});
    tree.cgroup("/other", {writer});
    tree.cgroup("/other/leaf", {writer});
    Protection protection(ProtectList{}, ::getpid(), tree.root);
    Subject jobs;
    jobs.scope = RuleScope::cgroup;
    jobs.cgroup = "/jobs";
    CHECK(protection.subject_reason(jobs) ==
          "its process " + std::to_string(::getpid()) + " in /jobs/batch/agent is protected: the agent itself");
    Subject other = jobs;
    other.cgroup = "/other";
    CHECK_FALSE(protection.subject_reason(other).has_value());

    // protect from top on a child cgroup protects its parents too.
    Subject leaf = other;
    leaf.cgroup = "/other/leaf";
    protection.protect_until_restart(leaf, "protected from top by uid 0 until the agent restarts");
    CHECK(protection.subject_reason(leaf) == "protected from top by uid 0 until the agent restarts");
    CHECK(protection.subject_reason(other) ==
          "its child cgroup /other/leaf is protected from top by uid 0 until the agent restarts");

    // protect.cgroup likewise.
    ProtectList list;
    list.cgroup = {"/other/le*"};
    Protection by_list(list, 1, tree.root);
    CHECK(by_list.subject_reason(other) == "its child cgroup /other/leaf matches protect.cgroup /other/le*");
    ::kill(writer, SIGKILL);
    ::waitpid(writer, nullptr, 0);
}
