// The stale-fixture sweep (tests/support/stale_fixtures.h): what a test
// binary killed by SIGKILL left on the machine is removed by the next one,
// and what a running test binary owns is left alone.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "actions/pidfd.h"
#include "ecosystem/ecosystem_support.h"  // wait_until
#include "resolve/mountinfo.h"
#include "support/agent_run.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/stale_fixtures.h"
#include "support/top_run.h"

using namespace diskwatch::test;
namespace fs = std::filesystem;

namespace {

constexpr long long kMiB = 1 << 20;

bool mounted_at(const std::string &path)
{
    return diskwatch::MountTable::load().find_by_mount_point(path) != nullptr;
}

bool cgroup_holds(const std::string &cgroup, pid_t pid)
{
    std::ifstream procs(cgroup + "/cgroup.procs");
    for (pid_t member; procs >> member;)
        if (member == pid)
            return true;
    return false;
}

std::string cgroup_events(const std::string &cgroup)
{
    std::ifstream in(cgroup + "/cgroup.events");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The image a loop device is bound to now ("" when unbound).
std::string loop_backing_file(const std::string &device)
{
    std::ifstream in("/sys/block/" + fs::path(device).filename().string() + "/loop/backing_file");
    std::string backing;
    std::getline(in, backing);
    return backing;
}

// A fake owner that provably does not exist: pids are below pid_max.
std::string dead_owner_tag()
{
    std::ifstream in("/proc/sys/kernel/pid_max");
    long pid_max = 0;
    in >> pid_max;
    REQUIRE(pid_max > 0);
    return std::to_string(pid_max) + ".1";
}

// What the killed test binary made, as it reported it before it was killed.
struct DeadFixtures {
    std::string mount_point;
    std::string loop_device;
    std::string image;
    std::string cgroup;
    pid_t writer = -1;
    std::string agent_dir;
};

// A child of this test binary makes the fixtures a test makes (loop mount,
// cgroup, a writer in it, stopped and then frozen, an agent directory), reports
// them, and waits to be SIGKILLed: no destructor of its runs.
DeadFixtures fixtures_of_a_killed_test_binary()
{
    int report[2];
    REQUIRE(::pipe(report) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(report[0]);
        try {
            mark_children_as_ours();  // its writer carries its own tag, not ours
            // Leaked on purpose: SIGKILL, not a destructor, ends this process.
            auto *disk = new LoopMount(64);
            auto *cgroup = new Cgroup2Child("dw-sweep-dead");
            auto *writer = new ChildProcess(start_writer(disk->path() + "/dead.log", 1024 * kMiB, "dw-sweep-dead",
                                                         {"--pace", std::to_string(kMiB / 4), "--cgroup", cgroup->path()}));
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            while (!cgroup_holds(cgroup->path(), writer->pid()) && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            ::kill(writer->pid(), SIGSTOP);
            while (diskwatch::process_state(writer->pid()) != 'T' && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            { std::ofstream(cgroup->path() + "/cgroup.freeze") << "1"; }
            const std::string agent_dir = make_owned_temp_dir("dw-agent");
            { std::ofstream(agent_dir + "/events.json") << "{}\n"; }
            std::ostringstream line;
            line << disk->path() << "\n" << disk->device() << "\n" << cgroup->path() << "\n"
                 << writer->pid() << "\n" << agent_dir << "\n";
            const std::string text = line.str();
            if (::write(report[1], text.data(), text.size()) != static_cast<ssize_t>(text.size()))
                ::_exit(1);
        } catch (...) {
            ::_exit(1);
        }
        for (;;)
            ::pause();
    }
    ::close(report[1]);
    std::string text;
    char buffer[4096];
    pollfd readable{report[0], POLLIN, 0};
    while (::poll(&readable, 1, 60000) == 1) {
        const ssize_t got = ::read(report[0], buffer, sizeof(buffer));
        if (got <= 0)
            break;
        text.append(buffer, static_cast<size_t>(got));
        if (std::count(text.begin(), text.end(), '\n') == 5)
            break;
    }
    ::close(report[0]);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    INFO("what the child reported: " << text);
    std::istringstream lines(text);
    DeadFixtures dead;
    std::string pid;
    REQUIRE(std::getline(lines, dead.mount_point));
    REQUIRE(std::getline(lines, dead.loop_device));
    REQUIRE(std::getline(lines, dead.cgroup));
    REQUIRE(std::getline(lines, pid));
    REQUIRE(std::getline(lines, dead.agent_dir));
    dead.writer = std::stoi(pid);
    dead.image = fs::path(dead.mount_point).parent_path().string() + "/image";
    return dead;
}

}  // namespace

TEST_CASE("an owner tag is gone only when its process provably is", "[support][sweep]")
{
    if (!bpf_tests_can_run())
        return;
    const std::string mine = owner_tag();
    CHECK_FALSE(owner_is_gone(mine));
    CHECK(owner_is_gone(dead_owner_tag()));
    // Our pid with another start time: a later process that reused the pid.
    CHECK(owner_is_gone(std::to_string(::getpid()) + ".1"));
    CHECK_FALSE(owner_is_gone("not-a-tag"));
    CHECK_FALSE(owner_is_gone(""));
    CHECK(std::string(std::getenv(kOwnerEnvironment)) == mine);  // set before the first test, for children
}

TEST_CASE("the sweep removes the fixtures of a SIGKILLed test binary and leaves a live one's alone",
          "[support][sweep]")
{
    if (!bpf_tests_can_run())
        return;
    // This binary's own fixtures, alive: the sweep must not touch them.
    LoopMount live_disk(64);
    Cgroup2Child live_cgroup("dw-sweep-live");
    auto live_writer = start_writer(live_disk.path() + "/live.log", 1024 * kMiB, "dw-sweep-live",
                                    {"--pace", std::to_string(kMiB / 4), "--cgroup", live_cgroup.path()});
    REQUIRE(wait_until([&] { return cgroup_holds(live_cgroup.path(), live_writer.pid()); }, std::chrono::seconds(30)));
    ScratchDir live_dir;  // /tmp/dw-agent-<our tag>-*

    // A fake dead owner's directory and cgroup, as an older killed run leaves them.
    const std::string fake_dir = "/tmp/dw-agent-" + dead_owner_tag() + "-sweep1";
    REQUIRE(::mkdir(fake_dir.c_str(), 0700) == 0);
    { std::ofstream(fake_dir + "/state") << "x"; }
    const auto mounts = diskwatch::MountTable::load();
    const auto *cgroup2 = mounts.find_cgroup2();
    REQUIRE(cgroup2 != nullptr);
    const std::string fake_cgroup = cgroup2->mount_point + "/dw-sweep-fake-" + dead_owner_tag() + "-1";
    REQUIRE(::mkdir(fake_cgroup.c_str(), 0755) == 0);
    REQUIRE(::mkdir((fake_cgroup + "/nested.scope").c_str(), 0755) == 0);

    const DeadFixtures dead = fixtures_of_a_killed_test_binary();
    std::string error;
    auto dead_writer = diskwatch::Pidfd::open(dead.writer, "", 0, &error);
    INFO(error);
    REQUIRE(dead_writer.has_value());
    // Stopped (the child waited for state T), then frozen: the sweep must thaw
    // and SIGCONT before it kills.
    CHECK(wait_until([&] { return cgroup_events(dead.cgroup).find("frozen 1") != std::string::npos; },
                     std::chrono::seconds(10)));
    REQUIRE(mounted_at(dead.mount_point));
    REQUIRE(loop_backing_file(dead.loop_device) == dead.image);

    const SweepReport report = sweep_stale_fixtures();
    INFO(report.summary());
    CHECK(report.failures.empty());

    // The killed binary's: all gone (by this sweep, or by a test binary's starting at the same time).
    CHECK(wait_until([&] { return dead_writer->exited(); }, std::chrono::seconds(10)));
    CHECK_FALSE(mounted_at(dead.mount_point));
    CHECK(loop_backing_file(dead.loop_device) != dead.image);
    CHECK_FALSE(fs::exists(fs::path(dead.mount_point).parent_path()));
    CHECK_FALSE(fs::exists(dead.cgroup));
    CHECK_FALSE(fs::exists(dead.agent_dir));
    CHECK_FALSE(fs::exists(fake_dir));
    CHECK_FALSE(fs::exists(fake_cgroup));

    // Ours: untouched, the writer still running in its cgroup.
    CHECK(mounted_at(live_disk.path()));
    CHECK(loop_backing_file(live_disk.device()) == fs::path(live_disk.path()).parent_path().string() + "/image");
    CHECK(fs::exists(live_dir.path()));
    CHECK(cgroup_holds(live_cgroup.path(), live_writer.pid()));
    CHECK(diskwatch::process_state(live_writer.pid()) != 'Z');
    CHECK(std::count(report.processes_killed.begin(), report.processes_killed.end(), live_writer.pid()) == 0);
}
