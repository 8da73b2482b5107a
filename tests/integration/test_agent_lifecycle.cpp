// The agent's own life (docs/security.md, rows 25-29): a dead or hung agent's
// guard releases what it stopped or froze with no restart; one agent per state
// dir; SIGTERM or SIGINT at any moment of start-up is a clean exit. Real BPF
// programs, real writers, real signals.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "actions/pidfd.h"
#include "ecosystem/ecosystem_support.h"
#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

constexpr long long kMiB = 1 << 20;

// The first line of a cgroup file.
std::string read_line(const std::string &path)
{
    const std::string text = read_file(path);
    return text.substr(0, text.find('\n'));
}

bool stopped(pid_t pid)
{
    const char state = diskwatch::process_state(pid);
    return state == 'T' || state == 't';
}

// A process writer and a cgroup writer, each throttled to 64 KiB/s against
// the 16 MiB/s they would write (they spend nearly all their time paused),
// under an agent whose both throttles have started.
struct ThrottledPair {
    LoopMount disk {512};
    Cgroup2Child cgroup;
    ChildProcess process_writer;
    ChildProcess cgroup_writer;
    AgentRun agent;

    explicit ThrottledPair(const std::string &cgroup_name)
        : cgroup(cgroup_name),
          process_writer(start_writer(disk.path() + "/p.log", 512 * kMiB, "dw-stopped",
                                      {"--pace", std::to_string(16 * kMiB)})),
          cgroup_writer(start_writer(disk.path() + "/c.log", 512 * kMiB, "dw-member",
                                     {"--pace", std::to_string(16 * kMiB), "--cgroup", cgroup.path()})),
          agent(PolicyYaml()
                    .rule("stop-process")
                    .match("comm", {"dw-stopped"})
                    .when("4MiB/s", "250ms")
                    .action("throttle")
                    .set("throttle_to", "64KiB/s")
                    .rule("stop-cgroup")
                    .cgroup_scope()
                    .match("cgroup", {cgroup.relative_path()})
                    .when("4MiB/s", "250ms")
                    .action("throttle")
                    .set("throttle_to", "64KiB/s"))
    {
    }

    // The agent started with its guard, both throttles started, and the agent
    // is held still (SIGSTOP) at a moment when both writers are paused.
    bool held_with_both_paused() const
    {
        if (!agent.started() || agent.guard_pid() <= 0)
            return false;
        for (const char *rule : {"stop-cgroup", "stop-process"})
            if (!agent.wait_for([&](const json &e) { return e.value("event", "") == "action" && e["rule"] == rule; },
                                std::chrono::seconds(10)))
                return false;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            agent.signal(SIGSTOP);
            if (stopped(process_writer.pid()) && stopped(cgroup_writer.pid()))
                return true;
            agent.signal(SIGCONT);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return false;
    }

    bool both_running() const
    {
        return wait_until([&] { return !stopped(process_writer.pid()); }, std::chrono::seconds(8)) &&
               wait_until([&] { return !stopped(cgroup_writer.pid()); }, std::chrono::seconds(8));
    }
};

}  // namespace

TEST_CASE("a SIGKILLed agent's guard continues the writers the kernel stopped, at both scopes, with no restart",
          "[agent][guard][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    ThrottledPair pair("dw-guard-kill");
    AgentRun &agent = pair.agent;
    const pid_t guard = agent.guard_pid();
    REQUIRE(pair.held_with_both_paused());
    const auto killed_at = std::chrono::steady_clock::now();
    agent.signal(SIGKILL);
    // Both run again, with no agent anywhere: the guard saw the death on its pidfd.
    CHECK(pair.both_running());
    const auto released_after = std::chrono::steady_clock::now() - killed_at;
    INFO("released after " << std::chrono::duration<double>(released_after).count() << " s");
    CHECK(released_after < std::chrono::seconds(3));  // generous: scripts/bench measures it
    // The guard said so on the agent's event stream, then exited.
    REQUIRE(agent.stop(std::chrono::seconds(5)));
    INFO(agent.events_text());
    auto continued = agent.wait_for([&](const json &e) {
        return e.value("event", "") == "action" && e["action"] == "release" && e["mechanism"] == "sigstop" &&
               e["process"]["pid"] == pair.process_writer.pid();
    }, std::chrono::seconds(5));
    REQUIRE(continued);
    CHECK(continued->value("reason", "").rfind("guard: the agent (pid " + std::to_string(agent.pid()) + ") exited", 0) == 0);
    auto member_continued = agent.wait_for([&](const json &e) {
        return e.value("event", "") == "action" && e["action"] == "release" && e["mechanism"] == "sigstop" &&
               e["process"]["pid"] == pair.cgroup_writer.pid();
    }, std::chrono::seconds(5));
    REQUIRE(member_continued);
    CHECK(wait_until([&] { return diskwatch::process_state(guard) == 0 || diskwatch::process_state(guard) == 'Z'; },
                     std::chrono::seconds(5)));
    // The writers write again.
    const auto grows = [](const std::string &path) {
        struct stat before {};
        ::stat(path.c_str(), &before);
        return wait_until([&] {
            struct stat now {};
            ::stat(path.c_str(), &now);
            return now.st_size > before.st_size;
        }, std::chrono::seconds(5));
    };
    CHECK(grows(pair.disk.path() + "/p.log"));
    CHECK(grows(pair.disk.path() + "/c.log"));
    // The dead agent's state dir is free at once: the guard never held its lock.
    AgentRun next("rules: []\n", {}, agent.state_dir());
    CHECK(next.started());
}

TEST_CASE("SIGTERM to the agent and its guard at once (systemd stopping the unit): everything is released, both exit",
          "[agent][guard][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    ThrottledPair pair("dw-guard-term");
    AgentRun &agent = pair.agent;
    const pid_t guard = agent.guard_pid();
    REQUIRE(pair.held_with_both_paused());
    // As KillMode=control-group does: the signal to every process of the unit.
    REQUIRE(::kill(guard, SIGTERM) == 0);
    agent.signal(SIGTERM);
    agent.signal(SIGCONT);
    REQUIRE(agent.stop(std::chrono::seconds(15)) == 0);
    CHECK(wait_until([&] { return diskwatch::process_state(guard) == 0 || diskwatch::process_state(guard) == 'Z'; },
                     std::chrono::seconds(15)));
    CHECK(pair.both_running());
    INFO(agent.events_text());
    CHECK(count_events(agent.events(), "agent.stop") == 1);
}

TEST_CASE("systemd's watchdog aborts a hung agent (SIGABRT to the agent and its guard at once): the guard stays and "
          "releases",
          "[agent][guard][systemd][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    ThrottledPair pair("dw-guard-abrt");
    AgentRun &agent = pair.agent;
    const pid_t guard = agent.guard_pid();
    REQUIRE(guard > 0);
    REQUIRE(pair.held_with_both_paused());
    // As a watchdog timeout does under KillMode=control-group: WatchdogSignal
    // (SIGABRT) to every process of the unit, the guard included.
    REQUIRE(::kill(guard, SIGABRT) == 0);
    agent.signal(SIGABRT);
    CHECK(pair.both_running());
    agent.stop(std::chrono::seconds(10));
    INFO(agent.events_text());
    CHECK(agent.wait_for([&](const json &e) {
        return e.value("event", "") == "action" && e["action"] == "release" && e["process"]["pid"] == pair.process_writer.pid() &&
               e.value("reason", "").rfind("guard: ", 0) == 0;
    }, std::chrono::seconds(5)));
    CHECK(wait_until([&] { return diskwatch::process_state(guard) == 0 || diskwatch::process_state(guard) == 'Z'; },
                     std::chrono::seconds(10)));
}

TEST_CASE("a hung agent (SIGSTOP) stops beating: its guard releases without waiting for a death, and the agent goes "
          "on when continued",
          "[agent][guard][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    ThrottledPair pair("dw-guard-hang");
    AgentRun &agent = pair.agent;
    REQUIRE(pair.held_with_both_paused());
    // Held still: the agent is alive, so only the heartbeat can tell.
    CHECK(pair.both_running());
    INFO(agent.events_text());
    auto released = agent.wait_for([&](const json &e) {
        return e.value("event", "") == "action" && e["action"] == "release" &&
               e.value("reason", "").find("has not run its loop") != std::string::npos;
    }, std::chrono::seconds(5));
    CHECK(released);
    // Continued, the agent goes on and stops cleanly, releasing what it holds.
    agent.signal(SIGCONT);
    REQUIRE(agent.stop(std::chrono::seconds(10)) == 0);
    CHECK(count_events(agent.events(), "agent.stop") == 1);
    CHECK(pair.both_running());
}

TEST_CASE("a second agent on the same state dir refuses to start, naming the first one's pid, and touches nothing",
          "[agent][guard][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    ScratchDir state;
    AgentRun first("rules: []\n", {}, state.path());
    REQUIRE(first.started());
    std::ifstream before_file(state.path() + "/state.json");
    std::stringstream before;
    before << before_file.rdbuf();
    ScratchDir other;
    auto second = ChildProcess::start({DW_BINARY, "agent", "--state-dir", state.path(), "--json-out",
                                       other.path() + "/events.json", "--control-socket", other.path() + "/control.sock"});
    const auto status = second.wait(std::chrono::seconds(30));
    INFO(second.err());
    CHECK(status == 1);
    CHECK(second.err().find("used by another agent (pid " + std::to_string(first.pid()) + ",") != std::string::npos);
    std::ifstream after_file(state.path() + "/state.json");
    std::stringstream after;
    after << after_file.rdbuf();
    CHECK(after.str() == before.str());
    CHECK(first.stop() == 0);
    // Once the first is gone, the state dir is free.
    AgentRun third("rules: []\n", {}, state.path());
    CHECK(third.started());
}

TEST_CASE("SIGTERM or SIGINT at any moment of start-up is a clean exit: status 0, nothing left running, agent.stop "
          "exactly when agent.start was sent",
          "[agent][signals][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    // From the first instructions (before the handlers could be installed by
    // a naive agent) to the programs' load and the loop's first pass.
    for (int delay_ms : {0, 5, 20, 60, 150, 300, 600, 1000, 1600, 2500}) {
        for (int signo : {SIGTERM, SIGINT}) {
            ScratchDir scratch;
            const std::string events = scratch.path() + "/events.json";
            auto agent = ChildProcess::start({DW_BINARY, "agent", "--state-dir", scratch.path() + "/state",
                                              "--json-out", events});
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            const pid_t guard = guard_of(agent.pid());
            agent.signal(signo);
            const auto status = agent.wait(std::chrono::seconds(30));
            INFO("signal " << signo << " after " << delay_ms << " ms; stderr: " << agent.err());
            REQUIRE(status.has_value());
            CHECK(agent.err().find("terminate called") == std::string::npos);
            std::ifstream in(events);
            size_t starts = 0, stops = 0, lines = 0;
            for (std::string line; std::getline(in, line); ++lines) {
                starts += line.find("\"event\":\"agent.start\"") != std::string::npos;
                stops += line.find("\"event\":\"agent.stop\"") != std::string::npos;
            }
            // Exit 0; or, for a signal that came while the dynamic loader
            // still ran (before main()), the default action: then it had done
            // nothing at all, not even opened its event file.
            const bool before_main = *status == 128 + signo && !guard && !std::ifstream(events);
            CHECK((*status == 0 || before_main));
            CHECK(starts <= 1);
            CHECK(stops == starts);
            if (guard > 0)  // the guard follows the agent out
                CHECK(wait_until([&] { return diskwatch::process_state(guard) == 0 || diskwatch::process_state(guard) == 'Z'; },
                                 std::chrono::seconds(5)));
        }
    }
}
