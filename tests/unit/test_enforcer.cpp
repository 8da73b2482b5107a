// The enforcer's continuer, release and bookkeeping on a real child process
// (real pidfds and signals); the kernel's side of a throttle (the stop at the
// write that overdraws the allowance, bpf/throttle.bpf.h) is played by the
// test, with a real SIGSTOP.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
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

// The kernel's side of a throttle, played by the test: overdraw() is what the
// writer's hook does at the write that overdraws its allowance (a real
// SIGSTOP, and the stop record); the allowance then refills at the rate.
class TestKernel final : public KernelThrottles {
public:
    bool start(RuleScope scope, uint64_t id, double rate_bps, double, double, std::string *) override
    {
        std::lock_guard lock(mutex_);
        throttles_[{scope, id}] = {rate_bps, 0, steady_s()};
        ++starts;
        return true;
    }
    void end(RuleScope scope, uint64_t id) override
    {
        std::lock_guard lock(mutex_);
        throttles_.erase({scope, id});
    }
    std::optional<KernelThrottleState> state(RuleScope scope, uint64_t id) const override
    {
        std::lock_guard lock(mutex_);
        auto it = throttles_.find({scope, id});
        if (it == throttles_.end())
            return std::nullopt;
        const auto &t = it->second;
        return KernelThrottleState {-t.owed_bytes + t.rate_bps * (steady_s() - t.since_s), stops_sent, 0, sigconts};
    }
    std::vector<KernelStop> stopped() const override
    {
        std::lock_guard lock(mutex_);
        return stops_;
    }
    void forget(pid_t pid) override
    {
        std::lock_guard lock(mutex_);
        std::erase_if(stops_, [pid](const KernelStop &stop) { return stop.pid == pid; });
    }
    void exempt(pid_t pid) override
    {
        std::lock_guard lock(mutex_);
        exempted.insert(pid);
    }
    void unexempt(pid_t pid) override
    {
        std::lock_guard lock(mutex_);
        exempted.erase(pid);
    }
    void beat() override {}

    // `pid` wrote `owed_bytes` past the allowance of the (scope, id) throttle.
    void overdraw(pid_t pid, RuleScope scope, uint64_t id, double owed_bytes)
    {
        std::lock_guard lock(mutex_);
        auto &t = throttles_.at({scope, id});
        t.owed_bytes = owed_bytes;
        t.since_s = steady_s();
        stops_.push_back({pid, scope, id, read_process_identity(pid)->start_boot_s});
        ++stops_sent;
        ::kill(pid, SIGSTOP);
    }
    bool holds(pid_t pid) const
    {
        std::lock_guard lock(mutex_);
        return std::any_of(stops_.begin(), stops_.end(), [pid](const KernelStop &stop) { return stop.pid == pid; });
    }

    int starts = 0;
    uint64_t stops_sent = 0;
    uint64_t sigconts = 0;  // from others, as the kernel counts them
    std::set<pid_t> exempted;

private:
    struct Throttle {
        double rate_bps = 0;
        double owed_bytes = 0;
        double since_s = 0;
    };
    mutable std::mutex mutex_;
    std::map<std::pair<RuleScope, uint64_t>, Throttle> throttles_;
    std::vector<KernelStop> stops_;
};

// An enforcer the test drives by hand: its state in `state_dir`, this
// process as the agent; the kernel and the event sink are the test's.
EnforcerOptions test_options(const char *state_dir, KernelThrottles *kernel, decltype(EnforcerOptions::emit) emit)
{
    EnforcerOptions options;
    options.host = "test";
    options.state_dir = state_dir;
    options.agent_pid = ::getpid();
    options.kernel = kernel;
    options.emit = std::move(emit);
    return options;
}

// Throttle to 1 MiB/s for a minute.
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

TEST_CASE("a process the kernel stopped is continued when its allowance is back, listed, and released on request",
          "[actions][enforcer]")
{
    Child child;
    REQUIRE(child.pid > 0);
    char state_dir[] = "/tmp/dw-enforcer-XXXXXX";
    REQUIRE(::mkdtemp(state_dir));
    TestKernel kernel;
    std::mutex events_mutex;
    std::vector<nlohmann::json> events;
    {
        Enforcer enforcer(test_options(state_dir, &kernel, [&](const nlohmann::json &event) {
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
        CHECK(kernel.starts == 1);
        CHECK(kernel.exempted.count(::getpid()) == 1);  // the agent is never stopped
        // It writes half a MiB past its allowance: stopped for half a second
        // at 1 MiB/s, then continued by the enforcer, and its record gone.
        const auto stopped_at = std::chrono::steady_clock::now();
        kernel.overdraw(child.pid, RuleScope::process, child.pid, 512 * 1024);
        enforcer.kernel_stopped();
        CHECK(eventually([&] { return process_state(child.pid) == 'T'; }));
        CHECK(eventually([&] { return enforcer.active().at(0).paused; }));
        CHECK(eventually([&] { return process_state(child.pid) != 'T'; }));
        const double waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
        CHECK(waited_s >= 0.45);
        CHECK(waited_s < 2.0);  // generous: the bench measures the throttle's error
        CHECK_FALSE(kernel.holds(child.pid));
        // Stopped again, owing a minute's worth: it stays stopped until released.
        kernel.overdraw(child.pid, RuleScope::process, child.pid, 60 << 20);
        enforcer.kernel_stopped();
        std::this_thread::sleep_for(100ms);
        CHECK(process_state(child.pid) == 'T');
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
        CHECK_FALSE(kernel.holds(child.pid));
        CHECK(enforcer.active().empty());
    }
    std::lock_guard lock(events_mutex);
    REQUIRE(events.size() == 2);
    CHECK(events[0]["action"] == "throttle");
    CHECK(events[0]["mechanism"] == "sigstop");
    CHECK(events[0]["throttle_to_bps"] == 1048576.0);
    CHECK(events[1]["action"] == "release");
    CHECK(events[1]["reason"] == "requested");
    CHECK(events[1]["stops"] == 2);
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
    TestKernel kernel;
    Enforcer enforcer(test_options(
        state_dir, &kernel,
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
    TestKernel kernel;
    {
        Enforcer enforcer(test_options(state_dir, &kernel, [](const nlohmann::json &) {}));
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
    TestKernel kernel;
    {
        Enforcer enforcer(test_options(
            state_dir, &kernel,
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

TEST_CASE("a cgroup's members the kernel stopped are continued by their own pidfds, and a SIGCONT from another is "
          "throttle.defied, at most once a second",
          "[actions][enforcer]")
{
    Child first("dw-member-a");
    Child second("dw-member-b");
    REQUIRE(eventually([&] { return read_process_identity(second.pid)->comm == "dw-member-b"; }));
    char state_dir[] = "/tmp/dw-enforcer-XXXXXX";
    REQUIRE(::mkdtemp(state_dir));
    TestKernel kernel;
    std::mutex events_mutex;
    std::vector<nlohmann::json> events;
    constexpr uint64_t kCgroupId = 4242;
    {
        Enforcer enforcer(test_options(state_dir, &kernel, [&](const nlohmann::json &event) {
            std::lock_guard lock(events_mutex);
            events.push_back(event);
        }));
        enforcer.set_policy(Policy{}, false);
        PolicyRule rule = slow_rule();
        rule.scope = RuleScope::cgroup;
        Subject subject;
        subject.scope = RuleScope::cgroup;
        subject.cgroup_id = kCgroupId;
        subject.cgroup = "/dw-test-not-a-real-cgroup";  // no io.max there: held in the kernel
        subject.pid = static_cast<uint32_t>(first.pid);
        enforcer.enforce(rule, subject, RuleMeasures{}, steady_s());
        REQUIRE(enforcer.is_acting_on(subject.key()));
        {
            std::ifstream state(std::string(state_dir) + "/state.json");
            const auto saved = nlohmann::json::parse(state);
            REQUIRE(saved["stopped_in"].size() == 1);  // the cgroup, for whoever outlives the agent
        }
        // Both overdraw the cgroup's allowance by a quarter MiB in all.
        kernel.overdraw(first.pid, RuleScope::cgroup, kCgroupId, 128 * 1024);
        kernel.overdraw(second.pid, RuleScope::cgroup, kCgroupId, 256 * 1024);
        enforcer.kernel_stopped();
        CHECK(eventually([&] { return process_state(first.pid) == 'T' && process_state(second.pid) == 'T'; }));
        CHECK(eventually([&] { return process_state(first.pid) != 'T' && process_state(second.pid) != 'T'; }));
        CHECK_FALSE(kernel.holds(first.pid));
        CHECK_FALSE(kernel.holds(second.pid));
        // Someone (uid 65534) continues a stopped member, three times in a row.
        kernel.overdraw(second.pid, RuleScope::cgroup, kCgroupId, 60 << 20);
        for (int i = 0; i < 3; ++i) {
            ++kernel.sigconts;
            enforcer.defied(second.pid, RuleScope::cgroup, kCgroupId, 777, 65534, "kill", steady_s());
        }
        // Another throttle's SIGCONT is not this one's.
        enforcer.defied(second.pid, RuleScope::cgroup, kCgroupId + 1, 777, 65534, "kill", steady_s());
        const auto active = enforcer.active();
        REQUIRE(active.size() == 1);
        CHECK(active[0].defied == 3);
        std::string error;
        REQUIRE(enforcer.release("/dw-test-not-a-real-cgroup", "requested", &error));
        CHECK(eventually([&] { return process_state(second.pid) != 'T'; }));
    }
    std::lock_guard lock(events_mutex);
    std::vector<nlohmann::json> defied;
    for (const auto &event : events)
        if (event["event"] == "throttle.defied")
            defied.push_back(event);
    REQUIRE(defied.size() == 1);  // the first at once; the next two within the second are counted
    CHECK(defied[0]["rule"] == "slow");
    CHECK(defied[0]["scope"] == "cgroup");
    CHECK(defied[0]["process"]["pid"] == second.pid);
    CHECK(defied[0]["process"]["comm"] == "dw-member-b");
    CHECK(defied[0]["sender"]["pid"] == 777);
    CHECK(defied[0]["sender"]["uid"] == 65534);
    CHECK(defied[0]["sender"]["comm"] == "kill");
    CHECK(defied[0]["count"] == 1);
    CHECK(defied[0]["total"] == 1);
    CHECK(defied[0]["owed_bytes"].get<double>() > 0);
    const auto &release = events.back();
    CHECK(release["action"] == "release");
    CHECK(release["mechanism"] == "sigstop");
    CHECK(release["defied"] == 3);
    std::filesystem::remove_all(state_dir);
}
