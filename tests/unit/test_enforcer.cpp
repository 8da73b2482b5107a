// The enforcer's duty cycle, release and bookkeeping on a real child process
// (real pidfds and signals); only the byte count is supplied by the test, as
// the kernel's would be.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "actions/enforcer.h"
#include "actions/pidfd.h"
#include "resolve/processes.h"

using namespace diskwatch;
using namespace std::chrono_literals;

namespace {

struct Child {
    pid_t pid;
    explicit Child(const char *comm = nullptr) : pid(::fork())
    {
        if (pid == 0) {
            if (comm)
                ::prctl(PR_SET_NAME, comm, 0, 0, 0);
            for (;;)
                ::pause();
        }
    }
    ~Child()
    {
        ::kill(pid, SIGCONT);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
};

template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 3s)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (predicate())
            return true;
        std::this_thread::sleep_for(5ms);
    }
    return predicate();
}

double steady_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// An enforcer the test drives by hand: its state in `state_dir`, this
// process as the agent; the kernel's byte counts and the event sink are the
// test's.
EnforcerOptions test_options(const char *state_dir, decltype(EnforcerOptions::bytes_counted) bytes_counted,
                             decltype(EnforcerOptions::emit) emit)
{
    EnforcerOptions options;
    options.host = "test";
    options.state_dir = state_dir;
    options.agent_pid = ::getpid();
    options.bytes_counted = std::move(bytes_counted);
    options.emit = std::move(emit);
    return options;
}

// 1 MiB more every time it is asked: a writer far above 1 MiB/s.
auto growing_by_a_mib(std::atomic<uint64_t> &counted)
{
    return [&counted](RuleScope, uint64_t) { return std::optional<uint64_t>(counted += 1 << 20); };
}

// Throttle to 1 MiB/s for a minute: a writer counted by growing_by_a_mib is
// always over it.
PolicyRule slow_rule()
{
    PolicyRule rule;
    rule.name = "slow";
    rule.action = RuleAction::throttle;
    rule.throttle_to_bps = 1 << 20;
    rule.throttle_for_s = 60;
    return rule;
}

}  // namespace

TEST_CASE("a throttled process is stopped while over its allowance, listed, and released on request",
          "[actions][enforcer]")
{
    Child child;
    REQUIRE(child.pid > 0);
    char state_dir[] = "/tmp/dw-enforcer-XXXXXX";
    REQUIRE(::mkdtemp(state_dir));
    std::atomic<uint64_t> counted{0};
    std::mutex events_mutex;
    std::vector<nlohmann::json> events;
    {
        Enforcer enforcer(test_options(state_dir, growing_by_a_mib(counted), [&](const nlohmann::json &event) {
            std::lock_guard lock(events_mutex);
            events.push_back(event);
        }));
        enforcer.set_policy(Policy{}, false);
        const PolicyRule rule = slow_rule();
        Subject subject;
        subject.pid = static_cast<uint32_t>(child.pid);
        subject.comm = read_process_identity(child.pid)->comm;
        subject.start_boot_s = read_process_identity(child.pid)->start_boot_s;
        enforcer.enforce(rule, subject, RuleMeasures{}, steady_s());
        REQUIRE(enforcer.is_acting_on(subject.key()));
        CHECK(eventually([&] { return process_state(child.pid) == 'T'; }));
        auto active = enforcer.active();
        REQUIRE(active.size() == 1);
        CHECK(active[0].target == "process:" + std::to_string(child.pid));
        CHECK(active[0].mechanism == "sigstop");
        // The state file names it, for a restarted agent.
        std::ifstream state(std::string(state_dir) + "/state.json");
        const auto saved = nlohmann::json::parse(state);
        REQUIRE(saved["stopped"].size() == 1);
        CHECK(saved["stopped"][0]["pid"] == child.pid);
        CHECK(saved["stopped"][0]["start_boot_s"] == subject.start_boot_s);
        // Acting twice is a no-op: one throttle event.
        enforcer.enforce(rule, subject, RuleMeasures{}, steady_s());
        std::string error;
        CHECK_FALSE(enforcer.release("999999", "requested", &error));
        CHECK(error == "nothing throttled matches 999999");
        REQUIRE(enforcer.release(std::to_string(child.pid), "requested", &error));
        CHECK(eventually([&] { return process_state(child.pid) != 'T'; }));
        CHECK(enforcer.active().empty());
    }
    std::lock_guard lock(events_mutex);
    REQUIRE(events.size() == 2);
    CHECK(events[0]["action"] == "throttle");
    CHECK(events[0]["mechanism"] == "sigstop");
    CHECK(events[0]["throttle_to_bps"] == 1048576.0);
    CHECK(events[1]["action"] == "release");
    CHECK(events[1]["reason"] == "requested");
    CHECK(process_state(child.pid) != 'T');
    std::filesystem::remove_all(state_dir);
}

TEST_CASE("protected and dry-run subjects get events and no action", "[actions][enforcer]")
{
    Child child;
    char state_dir[] = "/tmp/dw-enforcer-XXXXXX";
    REQUIRE(::mkdtemp(state_dir));
    std::vector<nlohmann::json> events;
    std::mutex events_mutex;
    Enforcer enforcer(test_options(
        state_dir, [](RuleScope, uint64_t) { return std::optional<uint64_t>(); },
        [&](const nlohmann::json &event) {
            std::lock_guard lock(events_mutex);
            events.push_back(event);
        }));
    Subject subject;
    subject.pid = static_cast<uint32_t>(child.pid);
    subject.comm = read_process_identity(child.pid)->comm;
    subject.start_boot_s = read_process_identity(child.pid)->start_boot_s;
    PolicyRule rule;
    rule.name = "k";
    rule.action = RuleAction::kill;
    Policy policy;
    policy.protect.comm = {subject.comm};
    enforcer.set_policy(policy, false);
    enforcer.enforce(rule, subject, RuleMeasures{}, steady_s());
    enforcer.enforce(rule, subject, RuleMeasures{}, steady_s());
    enforcer.set_policy(Policy{}, true);
    enforcer.rule_ended(rule, subject);
    enforcer.enforce(rule, subject, RuleMeasures{}, steady_s());
    std::this_thread::sleep_for(100ms);
    CHECK(::kill(child.pid, 0) == 0);  // alive
    CHECK(process_state(child.pid) != 'T');
    std::lock_guard lock(events_mutex);
    REQUIRE(events.size() == 2);
    CHECK(events[0]["protected"] == true);
    CHECK(events[0]["mechanism"] == "none");
    CHECK(events[0]["protected_reason"] == "comm " + subject.comm + " matches protect.comm " + subject.comm);
    CHECK(events[1]["dry_run"] == true);
    CHECK(events[1]["mechanism"] == "pidfd_send_signal");
    std::filesystem::remove_all(state_dir);
}

TEST_CASE("a throttled process with a name that is not UTF-8 is saved exactly, never crashing the agent",
          "[actions][enforcer][security]")
{
    // Any user can name their process so (prctl PR_SET_NAME).
    Child child("evil\xff\xfe\"");
    REQUIRE(child.pid > 0);
    char state_dir[] = "/tmp/dw-enforcer-XXXXXX";
    REQUIRE(::mkdtemp(state_dir));
    std::atomic<uint64_t> counted{0};
    {
        Enforcer enforcer(test_options(state_dir, growing_by_a_mib(counted), [](const nlohmann::json &) {}));
        enforcer.set_policy(Policy{}, false);
        const PolicyRule rule = slow_rule();
        Subject subject;
        subject.pid = static_cast<uint32_t>(child.pid);
        REQUIRE(eventually([&] { return read_process_identity(child.pid)->comm == "evil\xff\xfe\""; }));
        subject.comm = read_process_identity(child.pid)->comm;
        subject.start_boot_s = read_process_identity(child.pid)->start_boot_s;
        REQUIRE_NOTHROW(enforcer.enforce(rule, subject, RuleMeasures{}, steady_s()));
        std::ifstream state(std::string(state_dir) + "/state.json");
        const auto saved = nlohmann::json::parse(state);
        REQUIRE(saved["stopped"].size() == 1);
        CHECK(saved["stopped"][0]["pid"] == child.pid);
        CHECK(saved["stopped"][0].contains("comm_b64"));
        std::string error;
        REQUIRE(enforcer.release(std::to_string(child.pid), "requested", &error));
    }
    CHECK(process_state(child.pid) != 'T');
    std::filesystem::remove_all(state_dir);
}

TEST_CASE("a pid now held by a later process of the same name is never signalled: start times differ",
          "[actions][enforcer][security]")
{
    // The rule saw a writer on this pid that started one clock tick before
    // the process there now (the writer exited, its exit record lost, and a
    // process of the same name took the pid). The integration test makes that
    // happen for real: test_agent_faults.cpp "a same-named process on a
    // recycled pid ...".
    Child child("dw-same-name");
    REQUIRE(child.pid > 0);
    REQUIRE(eventually([&] { return read_process_identity(child.pid)->comm == "dw-same-name"; }));
    const auto now_there = read_process_identity(child.pid);
    REQUIRE(now_there);
    REQUIRE(now_there->start_boot_s > 0);
    const double tick_s = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    char state_dir[] = "/tmp/dw-enforcer-XXXXXX";
    REQUIRE(::mkdtemp(state_dir));
    std::vector<nlohmann::json> events;
    std::mutex events_mutex;
    {
        Enforcer enforcer(test_options(
            state_dir, [](RuleScope, uint64_t) { return std::optional<uint64_t>(1ULL << 40); },
            [&](const nlohmann::json &event) {
                std::lock_guard lock(events_mutex);
                events.push_back(event);
            }));
        enforcer.set_policy(Policy{}, false);
        Subject subject;
        subject.pid = static_cast<uint32_t>(child.pid);
        subject.comm = "dw-same-name";
        subject.start_boot_s = now_there->start_boot_s - tick_s;
        PolicyRule kill;
        kill.name = "k";
        kill.action = RuleAction::kill;
        kill.kill_grace_s = 0;
        PolicyRule throttle;
        throttle.name = "t";
        throttle.action = RuleAction::throttle;
        throttle.throttle_to_bps = 1;
        throttle.throttle_for_s = 60;
        enforcer.enforce(kill, subject, RuleMeasures{}, steady_s());
        enforcer.enforce(throttle, subject, RuleMeasures{}, steady_s());
        // Its start time never read: it cannot be told from a later process.
        Subject unknown = subject;
        unknown.start_boot_s = 0;
        PolicyRule kill_unknown = kill;
        kill_unknown.name = "k0";
        enforcer.enforce(kill_unknown, unknown, RuleMeasures{}, steady_s());
        CHECK_FALSE(enforcer.is_acting_on(subject.key()));
        CHECK(enforcer.active().empty());
        std::this_thread::sleep_for(100ms);
    }
    CHECK(::kill(child.pid, 0) == 0);  // alive: no SIGKILL
    CHECK(process_state(child.pid) != 'T');  // never stopped
    std::lock_guard lock(events_mutex);
    REQUIRE(events.size() == 3);
    for (const auto &event : events) {
        INFO(event.dump());
        CHECK(event["event"] == "agent.warning");
        CHECK(event["process"]["pid"] == child.pid);
    }
    CHECK(events[0]["rule"] == "k");
    CHECK(events[0]["warning"].get<std::string>().find("the pid was reused") != std::string::npos);
    CHECK(events[1]["rule"] == "t");
    CHECK(events[1]["warning"].get<std::string>().find("the pid was reused") != std::string::npos);
    CHECK(events[2]["rule"] == "k0");
    CHECK(events[2]["warning"].get<std::string>().find("start time was not read") != std::string::npos);
    std::filesystem::remove_all(state_dir);
}
