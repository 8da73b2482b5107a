// Found by the hostile review of issue 13 (docs/security.md rows 31-32): the
// state dir is root's alone (a user's symlink or state.json can make root write
// nothing), an empty --state-dir is a usage error, and `status` escapes a
// hostile cgroup name. Each failed on the code reviewed. Real agent, real
// writers, real signals.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "actions/pidfd.h"
#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr long long kMiB = 1 << 20;

std::string slurp(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void spit(const std::string &path, const std::string &text)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

bool stopped(pid_t pid)
{
    const char state = diskwatch::process_state(pid);
    return state == 'T' || state == 't';
}

uid_t nobody_uid()
{
    const passwd *pw = ::getpwnam("nobody");
    return pw ? pw->pw_uid : 65534;
}

}  // namespace

// Finding: StateDirLock opens STATE_DIR/agent.lock with O_RDWR|O_CREAT (no
// O_NOFOLLOW), then ftruncate(0) + pwrite(pid): a symlink there makes root
// truncate and overwrite whatever it points to.
TEST_CASE("hostile review: a symlinked STATE_DIR/agent.lock never truncates the file it points to",
          "[hostile-review][lifecycle]")
{
    ScratchDir scratch;
    const std::string victim = scratch.path() + "/victim";
    const std::string precious = "precious root-only content\n";
    spit(victim, precious);
    const std::string state_dir = scratch.path() + "/state";
    fs::create_directories(state_dir);
    REQUIRE(::symlink(victim.c_str(), (state_dir + "/agent.lock").c_str()) == 0);

    {
        AgentRun agent("", {}, state_dir);
        // Refusing to start is fine; running is fine: clobbering is not.
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        CHECK(slurp(victim) == precious);
    }
    CHECK(slurp(victim) == precious);
}

// Finding: nothing checks who owns the state dir (the policy file is checked,
// row 15, "whoever can write it can kill processes"; whoever writes state.json
// makes root write). An io_max record in state.json names any directory; the
// reconcile (and the guard) write "<dev> wbps=max" to DIR/io.max, following a
// symlink: arbitrary bytes at offset 0 of any file (e.g. an empty root
// password in /etc/passwd). Same for frozen entries (DIR/cgroup.freeze <- "0").
TEST_CASE("hostile review: a state dir another user owns is refused, and state.json never writes through a symlink",
          "[hostile-review][lifecycle]")
{
    ScratchDir scratch;
    ::chmod(scratch.path().c_str(), 0755);
    const uid_t nobody = nobody_uid();
    const std::string victim = scratch.path() + "/victim";
    const std::string precious = "root:x:0:0:root:/root:/bin/bash\n";
    spit(victim, precious);
    // What a local user prepares in a state dir they own (e.g. --state-dir /tmp/diskwatch).
    const std::string state_dir = scratch.path() + "/user-state";
    const std::string evil = scratch.path() + "/user-evil";
    fs::create_directories(state_dir);
    fs::create_directories(evil);
    REQUIRE(::symlink(victim.c_str(), (evil + "/io.max").c_str()) == 0);
    spit(state_dir + "/state.json",
         json {{"agent_pid", 1},
               {"stopped", json::array()},
               {"frozen", json::array()},
               {"io_max", json::array({{{"path", evil}, {"dev", "root::0:0:root:/root:/bin/bash\n#"}}})}}
                 .dump() +
             "\n");
    for (const auto &path : {state_dir, state_dir + "/state.json", evil})
        REQUIRE(::lchown(path.c_str(), nobody, nobody) == 0);
    ::lchown((evil + "/io.max").c_str(), nobody, nobody);

    {
        AgentRun agent("", {}, state_dir);
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        CHECK(slurp(victim) == precious);
    }
    CHECK(slurp(victim) == precious);
}

// Finding: when state.json cannot be written (the state dir's filesystem is
// full: /run is a small tmpfs), the enforcer still SIGSTOPs the writer, says
// so only on stderr (no agent.warning), and the guard, finding no record,
// releases nothing when the agent is SIGKILLed: the writer stays stopped.
// Expected: the guard still continues it (or the throttle is not applied
// without a record, and an agent.warning says why).
TEST_CASE("hostile review: an empty --state-dir is a usage error and writes nothing in /", "[hostile-review][cli]")
{
    const bool lock_before = fs::exists("/agent.lock");
    const bool state_before = fs::exists("/state.json");
    ChildProcess process = ChildProcess::start({DW_BINARY, "agent", "--state-dir", ""});
    std::this_thread::sleep_for(std::chrono::seconds(3));
    process.signal(SIGTERM);
    const auto status = process.wait(std::chrono::seconds(15));
    CHECK(status == 2);
    CHECK(fs::exists("/agent.lock") == lock_before);
    CHECK(fs::exists("/state.json") == state_before);
    if (!lock_before)
        ::unlink("/agent.lock");
    if (!state_before)
        ::unlink("/state.json");
}

// Finding: `status` (text) prints the agent's answer's strings raw: the target
// of a cgroup throttle is "cgroup:" + the cgroup's path, and a container names
// its own cgroup. ESC [ 2 J and OSC 0 reach the operator's terminal (row 5's
// threat, through `status` instead of `top`).
TEST_CASE("hostile review: status (text) never prints a hostile cgroup name's control bytes raw",
          "[hostile-review][cli]")
{
    LoopMount disk {256};
    Cgroup2Child cgroup("dw-hr13-\x1b[2J\x1b]0;PWNED\x07");
    ChildProcess writer = start_writer(disk.path() + "/c.log", 256 * kMiB, "dw-hr13-cg",
                                       {"--pace", std::to_string(16 * kMiB), "--cgroup", cgroup.path()});
    ScratchDir scratch;
    const std::string socket = scratch.path() + "/control.sock";
    AgentRun agent(PolicyYaml()
                       .rule("freeze-hr13")
                       .cgroup_scope()
                       .match("cgroup", {"*dw-hr13-*"})
                       .when("4MiB/s", "250ms")
                       .action("throttle")
                       .set("throttle_to", "64KiB/s"),
                   {"--control-socket", socket});
    REQUIRE(agent.started());
    REQUIRE(agent.wait_for([](const json &e) { return e.value("event", "") == "action" && e["rule"] == "freeze-hr13"; },
                           std::chrono::seconds(15)));
    std::string output;
    REQUIRE(run({DW_BINARY, "status", "--control-socket", socket}, &output) == 0);
    INFO(output);
    CHECK(output.find("freeze-hr13") != std::string::npos);
    CHECK(output.find('\x1b') == std::string::npos);
    CHECK(output.find('\x07') == std::string::npos);
}

// Finding of the issue-13 review: when state.json cannot be written (the state
// dir's filesystem is full: /run is a small tmpfs), the enforcer still
// stopped the writer, and the guard, finding no record, released nothing when
// the agent was SIGKILLed: the writer stayed stopped. Now a throttle is
// recorded before it is applied, and one that cannot be recorded is not
// started: an agent.warning says why, the writer is never stopped, and a
// SIGKILL of the agent leaves nothing behind.
TEST_CASE("hostile review: with the state dir's disk full, no throttle starts (an agent.warning says why), so a "
          "SIGKILLed agent leaves no writer stopped",
          "[hostile-review][lifecycle][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk {512};
    TmpfsMount state {64};
    REQUIRE(::chmod(state.path().c_str(), 0700) == 0);  // a state dir is root's alone
    {
        // Fill the state dir's filesystem (the lock file needs only an inode).
        std::ofstream fill(state.path() + "/fill", std::ios::binary);
        const std::string block(4096, '\0');
        for (int i = 0; i < 64 && fill; ++i)
            fill << block;
    }
    ChildProcess writer = start_writer(disk.path() + "/p.log", 512 * kMiB, "dw-hr13-full",
                                       {"--pace", std::to_string(16 * kMiB)});
    AgentRun agent(PolicyYaml()
                       .rule("stop-process")
                       .match("comm", {"dw-hr13-full"})
                       .when("4MiB/s", "250ms")
                       .action("throttle")
                       .set("throttle_to", "64KiB/s"),
                   {}, state.path());
    REQUIRE(agent.started());
    REQUIRE(agent.guard_pid() > 0);
    auto refused = agent.wait_for([](const json &e) {
        return e.value("event", "") == "agent.warning" && e.value("rule", "") == "stop-process";
    }, std::chrono::seconds(15));
    INFO(agent.events_text());
    REQUIRE(refused);
    CHECK((*refused)["warning"].get<std::string>().find("cannot be recorded in the state file") != std::string::npos);
    for (const auto &event : agent.events())
        CHECK_FALSE((event.value("event", "") == "action" && event.value("action", "") == "throttle"));
    // Never stopped, while the agent lives and after it is SIGKILLed.
    for (int i = 0; i < 40; ++i) {
        CHECK_FALSE(stopped(writer.pid()));
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    agent.signal(SIGKILL);
    REQUIRE(agent.stop(std::chrono::seconds(5)));
    CHECK_FALSE(stopped(writer.pid()));
    writer.signal(SIGCONT);
}

// Finding of the issue-13 review: values of the agent's ecosystem options were checked only
// after the BPF programs loaded (~1 s), exited 1 instead of 2, and were echoed whole.
TEST_CASE("hostile review: a bad --metrics-listen / --syslog value is a usage error: exit 2, one line, cut short",
          "[hostile-review][cli]")
{
    ScratchDir scratch;
    const std::string huge(100000, 'x');
    for (const std::vector<std::string> &bad : {std::vector<std::string> {"--metrics-listen", "nan"},
                                                 std::vector<std::string> {"--metrics-listen", huge},
                                                 std::vector<std::string> {"--syslog", huge},
                                                 std::vector<std::string> {"--control-group", huge}}) {
        std::vector<std::string> argv = {DW_BINARY, "agent", "--state-dir", scratch.path() + "/state"};
        argv.insert(argv.end(), bad.begin(), bad.end());
        ChildProcess process = ChildProcess::start(argv);
        const auto status = process.wait(std::chrono::seconds(30));
        INFO(bad[0] << " " << bad[1].substr(0, 20));
        CHECK(status == 2);
        CHECK(process.err().size() < 1000);
        CHECK(std::count(process.err().begin(), process.err().end(), '\n') == 1);  // one line
    }
}
