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
#include "actions/pre_kill_hook.h"
#include "resolve/processes.h"

using namespace diskwatch;
using namespace std::chrono_literals;

namespace {

struct Child {
    pid_t pid;
    explicit Child(const char *comm = nullptr) : pid(::fork())
    {
        if (pid == 0) {
            // Not Catch's handlers (a copy of them would report the test's SIGTERM as a failure).
            ::signal(SIGTERM, SIG_DFL);
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

// A test's enforcer and what it emitted, its state directory removed at the end.
struct EnforcerRig {
    char state_dir[32] = "/tmp/dw-enforcer-XXXXXX";
    TestKernel kernel;
    std::mutex mutex;
    std::vector<nlohmann::json> events;
    std::unique_ptr<Enforcer> enforcer;
    explicit EnforcerRig(const SafetySettings &safety = {})
    {
        REQUIRE(::mkdtemp(state_dir));
        enforcer = std::make_unique<Enforcer>(test_options(state_dir, &kernel, [this](const Event &emitted) {
            std::lock_guard lock(mutex);
            events.push_back(nlohmann::json::parse(emitted.line()));
        }));
        Policy policy;
        policy.safety = safety;
        enforcer->set_policy(policy, false);
    }
    ~EnforcerRig()
    {
        enforcer.reset();
        std::filesystem::remove_all(state_dir);
    }
    std::vector<nlohmann::json> seen()
    {
        std::lock_guard lock(mutex);
        return events;
    }
};

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
    EnforcerRig rig;
    TestKernel &kernel = rig.kernel;
    {
        Enforcer &enforcer = *rig.enforcer;
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
        std::ifstream state(std::string(rig.state_dir) + "/state.json");
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
    rig.enforcer.reset();
    const auto events = rig.seen();
    REQUIRE(events.size() == 2);
    CHECK(events[0]["action"] == "throttle");
    CHECK(events[0]["mechanism"] == "sigstop");
    CHECK(events[0]["throttle_to_bps"] == 1048576.0);
    CHECK(events[1]["action"] == "release");
    CHECK(events[1]["reason"] == "requested");
    CHECK(events[1]["stops"] == 2);
    CHECK(process_state(child.pid) != 'T');
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
        [&](const Event &emitted) {
            std::lock_guard lock(events_mutex);
            events.push_back(nlohmann::json::parse(emitted.line()));
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
        Enforcer enforcer(test_options(state_dir, &kernel, [](const Event &) {}));
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
            [&](const Event &emitted) {
                std::lock_guard lock(events_mutex);
                events.push_back(nlohmann::json::parse(emitted.line()));
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
        Enforcer enforcer(test_options(state_dir, &kernel, [&](const Event &emitted) {
            std::lock_guard lock(events_mutex);
            events.push_back(nlohmann::json::parse(emitted.line()));
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

namespace {

// A child that ignores SIGTERM (only SIGKILL ends it); reaped however the test ends.
struct StubbornChild {
    pid_t pid = -1;
    StubbornChild()
    {
        // SIGTERM ignored before the test can send it: the child says when.
        int ready[2];
        REQUIRE(::pipe(ready) == 0);
        pid = ::fork();
        if (pid == 0) {
            ::signal(SIGTERM, SIG_IGN);
            [[maybe_unused]] const auto wrote = ::write(ready[1], "r", 1);
            for (;;)
                ::pause();
        }
        ::close(ready[1]);
        char byte = 0;
        REQUIRE(::read(ready[0], &byte, 1) == 1);
        ::close(ready[0]);
    }
    ~StubbornChild()
    {
        ::kill(pid, SIGCONT);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    Subject subject() const
    {
        Subject subject;
        subject.pid = static_cast<uint32_t>(pid);
        subject.start_boot_s = read_process_identity(pid)->start_boot_s;
        return subject;
    }
    // Never reaped before the destructor: a reaped pid may go to anyone, and the destructor signals it.
    bool alive() const
    {
        const char state = process_state(pid);
        return state != 0 && state != 'Z';
    }
};


PolicyRule kill_rule(double grace_s)
{
    PolicyRule rule;
    rule.name = "kill";
    rule.action = RuleAction::kill;
    rule.kill_grace_s = grace_s;
    rule.when.any = {{Condition::Kind::write_rate, 1 << 20, 1.0}};
    return rule;
}

RuleMeasures written(double cumulative_bytes)
{
    RuleMeasures measures;
    measures.held_now = true;
    measures.cumulative_bytes = cumulative_bytes;
    return measures;
}

}  // namespace

TEST_CASE("release --for: the subject is not acted on again until the snooze ends, by any rule, and an event says so",
          "[actions][enforcer][safety]")
{
    Child child;
    REQUIRE(child.pid > 0);
    EnforcerRig rig;
    Enforcer &enforcer = *rig.enforcer;
    TestKernel &kernel = rig.kernel;
    const PolicyRule rule = slow_rule();
    const PolicyRule killing = kill_rule(2);
    Subject subject;
    subject.pid = static_cast<uint32_t>(child.pid);
    subject.start_boot_s = read_process_identity(child.pid)->start_boot_s;
    const double now = steady_s();
    enforcer.enforce(rule, subject, RuleMeasures{}, now);
    REQUIRE(enforcer.is_acting_on(subject.key()));
    std::string error;
    REQUIRE(enforcer.release(std::to_string(child.pid), "requested", &error, 60));
    CHECK_FALSE(enforcer.is_acting_on(subject.key()));
    // The rule still holds: level-triggered, the agent asks again at once
    // (before --for it was throttled again 2 ms later), and every evaluation after.
    for (int i = 0; i < 5; ++i) {
        enforcer.enforce(rule, subject, RuleMeasures{}, now + 1 + i);
        enforcer.enforce(killing, subject, RuleMeasures{}, now + 1 + i);
    }
    CHECK_FALSE(enforcer.is_acting_on(subject.key()));
    CHECK(kernel.starts == 1);
    CHECK(process_state(child.pid) != 0);  // not killed
    {
        const auto events = rig.seen();
        REQUIRE(events.size() == 4);  // throttle, release, one snoozed action per rule
        CHECK(events[1]["action"] == "release");
        CHECK(events[1]["snooze_s"] == 60.0);
        CHECK(events[1]["snoozed_until"].get<std::string>().size() > 10);
        for (int i : {2, 3}) {
            CHECK(events[i]["mechanism"] == "none");
            CHECK(events[i]["snoozed_until"] == events[1]["snoozed_until"]);
        }
        CHECK(events[2]["action"] == "throttle");
        CHECK(events[3]["action"] == "kill");
    }
    // The snooze ends: the rule that still holds acts again.
    enforcer.enforce(rule, subject, RuleMeasures{}, now + 61);
    CHECK(enforcer.is_acting_on(subject.key()));
    CHECK(kernel.starts == 2);
    enforcer.release_all("test end");
}

TEST_CASE("release of a subject that is only snoozed lifts the snooze: the rules act on it again at once",
          "[actions][enforcer][safety]")
{
    Child child;
    REQUIRE(child.pid > 0);
    EnforcerRig rig;
    Enforcer &enforcer = *rig.enforcer;
    const PolicyRule rule = slow_rule();
    Subject subject;
    subject.pid = static_cast<uint32_t>(child.pid);
    subject.start_boot_s = read_process_identity(child.pid)->start_boot_s;
    const double now = steady_s();
    enforcer.enforce(rule, subject, RuleMeasures{}, now);
    std::string error;
    REQUIRE(enforcer.release(std::to_string(child.pid), "requested", &error, 3600));
    enforcer.enforce(rule, subject, RuleMeasures{}, now + 1);
    CHECK_FALSE(enforcer.is_acting_on(subject.key()));  // snoozed for an hour
    // Released again, with nothing throttled: the snooze goes, said in an event.
    REQUIRE(enforcer.release(std::to_string(child.pid), "requested", &error, 0,
                             nlohmann::json {{"requested", "top"}, {"requested_uid", 0}}));
    const auto events = rig.seen();
    REQUIRE_FALSE(events.empty());
    CHECK(events.back()["action"] == "release");
    CHECK(events.back()["reason"] == "snooze lifted");
    CHECK(events.back()["requested"] == "top");
    enforcer.rule_ended(rule, subject);
    enforcer.enforce(rule, subject, RuleMeasures{}, now + 3);
    CHECK(enforcer.is_acting_on(subject.key()));
    // Nothing throttled or snoozed: as before.
    enforcer.release_all("test end");
    CHECK_FALSE(enforcer.release(std::to_string(child.pid), "requested", &error));
    CHECK(error == "nothing throttled matches " + std::to_string(child.pid));
}

TEST_CASE("a snooze is the process's, not its pid's, and snoozes are bounded", "[actions][safety]")
{
    Snoozes snoozes;
    Subject subject;
    subject.pid = 42;
    subject.start_boot_s = 1000;
    snoozes.add(subject, 0, 600);
    REQUIRE(snoozes.active(subject, 10));
    Subject later = subject;  // a later process on the same pid
    later.start_boot_s = 1005;
    CHECK_FALSE(snoozes.active(later, 10));
    CHECK_FALSE(snoozes.active(subject, 600));  // over, and forgotten
    CHECK(snoozes.size() == 0);
    Subject cgroup;
    cgroup.scope = RuleScope::cgroup;
    cgroup.cgroup_id = 7;
    cgroup.cgroup = "/batch/job";
    snoozes.add(cgroup, 0, 60);
    snoozes.add(subject, 0, 30);
    cgroup.pid = 99;  // a cgroup's snooze does not depend on its largest writer
    CHECK(snoozes.active(cgroup, 1));
    // What status lists: soonest-ending first, by target.
    const auto listed = snoozes.active_all(1);
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].target == "process:42");
    CHECK(listed[1].target == "cgroup:/batch/job");
    CHECK(snoozes.active_all(45).size() == 1);
    for (uint32_t pid = 1; pid <= Snoozes::kMaxSnoozes + 10; ++pid) {
        subject.pid = pid;
        snoozes.add(subject, 1, 100 + pid);
    }
    CHECK(snoozes.size() == Snoozes::kMaxSnoozes);
}


TEST_CASE("safety.action_delay: a target waits after an action on it, and no other target waits with it",
          "[actions][enforcer][safety]")
{
    Child first;
    Child second;
    SafetySettings safety;
    safety.action_delay_s = 5;
    EnforcerRig rig(safety);
    const PolicyRule rule = slow_rule();
    Subject a;
    a.pid = static_cast<uint32_t>(first.pid);
    a.start_boot_s = read_process_identity(first.pid)->start_boot_s;
    Subject b;
    b.pid = static_cast<uint32_t>(second.pid);
    b.start_boot_s = read_process_identity(second.pid)->start_boot_s;
    const double now = steady_s();
    rig.enforcer->enforce(rule, a, RuleMeasures{}, now);
    REQUIRE(rig.enforcer->is_acting_on(a.key()));
    std::string error;
    REQUIRE(rig.enforcer->release(std::to_string(first.pid), "requested", &error));
    // A second later the rule still holds for both: the first waits, the second is acted on at once.
    rig.enforcer->enforce(rule, a, RuleMeasures{}, now + 1);
    rig.enforcer->enforce(rule, b, RuleMeasures{}, now + 1);
    CHECK_FALSE(rig.enforcer->is_acting_on(a.key()));
    CHECK(rig.enforcer->is_acting_on(b.key()));
    rig.enforcer->enforce(rule, a, RuleMeasures{}, now + 4.9);
    CHECK_FALSE(rig.enforcer->is_acting_on(a.key()));
    rig.enforcer->enforce(rule, a, RuleMeasures{}, now + 5);
    CHECK(rig.enforcer->is_acting_on(a.key()));
    CHECK(rig.kernel.starts == 3);
    rig.enforcer->release_all("test end");
}

TEST_CASE("safety.kill_limit: past the limit a kill is an alert that says so, until the window frees a kill",
          "[actions][enforcer][safety]")
{
    StubbornChild first;
    StubbornChild second;
    SafetySettings safety;
    safety.kill_limit = 1;
    safety.kill_window_s = 60;
    safety.action_delay_s = 0;
    EnforcerRig rig(safety);
    const PolicyRule rule = kill_rule(30);
    const double now = steady_s();
    rig.enforcer->enforce(rule, first.subject(), written(0), now);
    rig.enforcer->enforce(rule, second.subject(), written(0), now + 1);
    rig.enforcer->enforce(rule, second.subject(), written(0), now + 2);  // said once per episode
    CHECK(rig.enforcer->is_acting_on(first.subject().key()));
    CHECK_FALSE(rig.enforcer->is_acting_on(second.subject().key()));
    auto events = rig.seen();
    REQUIRE(events.size() == 2);
    CHECK(events[0]["action"] == "kill");
    CHECK(events[1]["action"] == "alert");
    CHECK(events[1]["instead_of"] == "kill");
    CHECK(events[1]["process"]["pid"] == second.pid);
    CHECK_THAT(events[1]["reason"].get<std::string>(), Catch::Contains("safety.kill_limit: 1 kills within 60 s"));
    // The rule's next episode, once the window has room again: killed.
    rig.enforcer->rule_ended(rule, second.subject());
    rig.enforcer->enforce(rule, second.subject(), written(0), now + 61);
    CHECK(rig.enforcer->is_acting_on(second.subject().key()));
}

TEST_CASE("safety.recheck_before_sigkill: SIGKILL follows SIGTERM only if it kept writing through the grace",
          "[actions][enforcer][safety]")
{
    StubbornChild child;  // SIGTERM does not end it: only the SIGKILL the re-check allows would
    SafetySettings safety;
    safety.action_delay_s = 0;
    EnforcerRig rig(safety);
    const PolicyRule rule = kill_rule(0.5);  // 1 MiB/s: at most 0.5 MiB in the grace is winding down
    const Subject subject = child.subject();
    const double now = steady_s();
    rig.enforcer->enforce(rule, subject, written(100 << 20), now);
    rig.enforcer->enforce(rule, subject, written((100 << 20) + 4096), now + 0.25);  // a last flush
    rig.enforcer->tick(now + 0.5);
    CHECK_FALSE(rig.enforcer->is_acting_on(subject.key()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(child.alive());
    auto events = rig.seen();
    REQUIRE(events.size() == 2);
    CHECK(events[1]["signal"] == "none");
    CHECK_THAT(events[1]["reason"].get<std::string>(), Catch::Contains("re-checked before SIGKILL"));

    // The rule's quiet spell (holding, its conditions not): no new kill.
    RuleMeasures quiet = written((100 << 20) + 4096);
    quiet.held_now = false;
    rig.enforcer->enforce(rule, subject, quiet, now + 0.75);
    CHECK_FALSE(rig.enforcer->is_acting_on(subject.key()));
    // Its conditions hold anew: a new kill; this time it writes on through the grace.
    rig.enforcer->enforce(rule, subject, written(200 << 20), now + 1);
    REQUIRE(rig.enforcer->is_acting_on(subject.key()));
    rig.enforcer->enforce(rule, subject, written(210 << 20), now + 1.25);
    rig.enforcer->tick(now + 1.5);
    CHECK(eventually([&] { return !child.alive(); }));
    events = rig.seen();
    REQUIRE(events.size() == 4);
    CHECK(events[2]["signal"] == "SIGTERM");
    CHECK(events[3]["signal"] == "SIGKILL");
    CHECK_THAT(events[3]["reason"].get<std::string>(), Catch::Contains("still writing after SIGTERM"));
}

TEST_CASE("the re-check's verdicts", "[actions][safety]")
{
    const double mib = 1 << 20;
    CHECK(recheck_before_sigkill(0, 3 * mib, 2, 1 * mib, false).sigkill);       // 3 MiB in 2 s at 1 MiB/s: on
    CHECK_FALSE(recheck_before_sigkill(0, 1.5 * mib, 2, 1 * mib, true).sigkill); // under the rate: winding down
    CHECK(recheck_before_sigkill(0, 1, 2, std::nullopt, true).sigkill);          // no rate: holds and writes
    CHECK_FALSE(recheck_before_sigkill(0, 1, 2, std::nullopt, false).sigkill);   // no longer holds
    CHECK_FALSE(recheck_before_sigkill(5, 5, 2, std::nullopt, true).sigkill);    // wrote nothing since
    CHECK(recheck_before_sigkill(-1, 5, 2, std::nullopt, false).sigkill);        // no numbers: as before
}

TEST_CASE("a pre_kill hook runs without a shell, bounded in time and output, its result in the kill event",
          "[actions][safety]")
{
    std::string error;
    const auto wait_for = [](HookRun &run) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!run.poll(steady_s()) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return run.result();
    };
    auto echo = HookRun::start({"/usr/bin/env"}, {"DW_PID=42"}, steady_s(), 5, &error);
    INFO(error);
    REQUIRE(echo);
    auto result = wait_for(*echo);
    CHECK(result["exit_status"] == 0);
    CHECK(result["timed_out"] == false);
    CHECK(result["output"] == "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nDW_PID=42\n");  // nothing of the agent's environment

    auto failing = HookRun::start({"/usr/bin/false"}, {}, steady_s(), 5, &error);
    REQUIRE(failing);
    CHECK(wait_for(*failing)["exit_status"] == 1);

    // A hook that writes without end and never exits: killed at its timeout, its output bounded.
    auto endless = HookRun::start({"/usr/bin/yes", "log line"}, {}, steady_s(), 0.3, &error);
    REQUIRE(endless);
    result = wait_for(*endless);
    CHECK(result["timed_out"] == true);
    CHECK(result["signal"] == "SIGKILL");
    CHECK(result["output"].get<std::string>().size() == HookRun::kMaxOutputBytes);
    CHECK(result["output_bytes"].get<size_t>() > HookRun::kMaxOutputBytes);
    CHECK(result["duration_s"].get<double>() < 5);

    CHECK_FALSE(HookRun::start({"sleep", "1"}, {}, steady_s(), 5, &error));  // no PATH lookup, no shell
    CHECK_THAT(error, Catch::Contains("absolute path"));
    CHECK_FALSE(HookRun::start({"/nonexistent/hook"}, {}, steady_s(), 5, &error));
    CHECK_THAT(error, Catch::Contains("posix_spawn"));
    CHECK(reap_hooks() == 0);
}

TEST_CASE("a slow pre_kill hook holds up its own kill only: another target is killed meanwhile",
          "[actions][enforcer][safety]")
{
    StubbornChild first;
    Child second;
    SafetySettings safety;
    safety.action_delay_s = 0;
    EnforcerRig rig(safety);
    PolicyRule slow_hook = kill_rule(0);
    slow_hook.name = "slow-hook";
    slow_hook.pre_kill = {"/usr/bin/sleep", "30"};
    slow_hook.pre_kill_timeout_s = 1;
    PolicyRule plain = kill_rule(0);
    Subject b;
    b.pid = static_cast<uint32_t>(second.pid);
    b.start_boot_s = read_process_identity(second.pid)->start_boot_s;
    const double now = steady_s();
    rig.enforcer->enforce(slow_hook, first.subject(), written(0), now);  // returns at once: the hook runs
    CHECK(steady_s() - now < 0.5);
    rig.enforcer->enforce(plain, b, written(0), now + 0.1);
    rig.enforcer->tick(steady_s());
    CHECK(eventually([&] { return process_state(second.pid) == 'Z'; }));  // dead, reaped by its destructor
    CHECK(first.alive());  // still waiting for its hook
    auto events = rig.seen();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["process"]["pid"] == second.pid);
    // The hook's timeout: killed, then the kill goes on, the result in its event.
    CHECK(eventually(
        [&] {
            rig.enforcer->tick(steady_s());
            return !first.alive();
        },
        std::chrono::seconds(5)));
    events = rig.seen();
    REQUIRE(events.size() == 2);
    CHECK(events[1]["signal"] == "SIGKILL");
    CHECK(events[1]["pre_kill"]["timed_out"] == true);
    CHECK(events[1]["pre_kill"]["argv"] == nlohmann::json({"/usr/bin/sleep", "30"}));
}

TEST_CASE("escalation's verdicts: a writer held at throttle_to is judged by how much of the time it was stopped",
          "[actions][safety]")
{
    const double mib = 1 << 20;
    // Held to 1 MiB/s, stopped 90% of the time: it wants ~10 MiB/s, over a 5 MiB/s rule.
    auto verdict = escalation_due(9, 10, 1 * mib, 5 * mib);
    CHECK(verdict.kill);
    CHECK(verdict.stopped_fraction == Approx(0.9));
    CHECK(*verdict.demand_bps == Approx(10 * mib));
    CHECK_THAT(verdict.why, Catch::Contains("over the rule's 5.0 MiB/s"));
    // Stopped 50%: ~2 MiB/s, under it: left throttled.
    CHECK_FALSE(escalation_due(5, 10, 1 * mib, 5 * mib).kill);
    // Stopped all along: no bound on what it wants.
    verdict = escalation_due(10, 10, 1 * mib, 5 * mib);
    CHECK(verdict.kill);
    CHECK_FALSE(verdict.demand_bps);
    // A rule without a rate: most of the time.
    CHECK(escalation_due(6, 10, 1 * mib, std::nullopt).kill);
    CHECK_FALSE(escalation_due(4, 10, 1 * mib, std::nullopt).kill);
}

TEST_CASE("escalate_after: a throttled writer stopped most of the window is killed, one that slowed down is not",
          "[actions][enforcer][safety]")
{
    Child flooding;
    Child calm;
    SafetySettings safety;
    safety.action_delay_s = 0;
    EnforcerRig rig(safety);
    PolicyRule rule = slow_rule();  // 1 MiB/s
    rule.when.any = {{Condition::Kind::write_rate, 4 << 20, 1.0}};
    rule.escalate_after_s = 0.6;
    rule.kill_grace_s = 0.2;
    Subject a;
    a.pid = static_cast<uint32_t>(flooding.pid);
    a.start_boot_s = read_process_identity(flooding.pid)->start_boot_s;
    Subject b;
    b.pid = static_cast<uint32_t>(calm.pid);
    b.start_boot_s = read_process_identity(calm.pid)->start_boot_s;
    const double start = steady_s();
    rig.enforcer->enforce(rule, a, RuleMeasures{}, start);
    rig.enforcer->enforce(rule, b, RuleMeasures{}, start);
    // The flood owes a minute's worth at once: stopped all along. The calm one never overdraws.
    rig.kernel.overdraw(flooding.pid, RuleScope::process, flooding.pid, 60 << 20);
    rig.enforcer->kernel_stopped();
    CHECK(eventually([&] { return process_state(flooding.pid) == 'T'; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    rig.enforcer->tick(steady_s());
    CHECK(eventually([&] { return process_state(flooding.pid) == 'Z'; }));  // dead, reaped by its destructor
    CHECK(rig.enforcer->is_acting_on(b.key()));  // still throttled, alive
    CHECK(process_state(calm.pid) != 'Z');
    const auto events = rig.seen();
    bool escalated = false;
    for (const auto &event : events)
        if (event["action"] == "kill" && event.value("escalated", false)) {
            escalated = true;
            CHECK(event["process"]["pid"] == flooding.pid);
            CHECK(event["stopped_fraction"].get<double>() > 0.8);
            CHECK_THAT(event["reason"].get<std::string>(), Catch::Contains("over the rule's 4.0 MiB/s"));
        }
    CHECK(escalated);
    rig.enforcer->release_all("test end");
}

TEST_CASE("a cgroup rule acts on the cgroups it prefers first, those it avoids last, the fastest first within each, "
          "and never on those it omits",
          "[actions][safety]")
{
    PolicyRule cgroups;
    cgroups.name = "cg";
    cgroups.scope = RuleScope::cgroup;
    cgroups.prefer = {"/batch.slice/*"};
    cgroups.avoid = {"/system.slice/*"};
    cgroups.omit = {"/system.slice/postgresql.service"};
    PolicyRule processes;
    processes.name = "p";
    const auto candidate = [](size_t rule, RuleScope scope, const std::string &cgroup, double bps) {
        ActionCandidate c;
        c.rule_index = rule;
        c.subject.scope = scope;
        c.subject.cgroup = cgroup;
        c.subject.cgroup_id = std::hash<std::string>{}(cgroup);
        c.measures.write_bps = bps;
        return c;
    };
    std::vector<ActionCandidate> candidates = {
        candidate(0, RuleScope::cgroup, "/system.slice/nginx.service", 900),
        candidate(0, RuleScope::cgroup, "/user.slice/a", 100),
        candidate(1, RuleScope::process, "/user.slice/b", 500),
        candidate(0, RuleScope::cgroup, "/batch.slice/job-1", 10),
        candidate(0, RuleScope::cgroup, "/batch.slice/job-2", 20),
    };
    order_for_action(candidates, {cgroups, processes});
    std::vector<std::string> order;
    for (const auto &c : candidates)
        order.push_back(c.subject.cgroup);
    CHECK(order == std::vector<std::string>{"/batch.slice/job-2", "/batch.slice/job-1", "/user.slice/b", "/user.slice/a",
                                            "/system.slice/nginx.service"});
    Subject postgres;
    postgres.scope = RuleScope::cgroup;
    postgres.cgroup = "/system.slice/postgresql.service";
    CHECK(omit_reason(cgroups, postgres) ==
          "cgroup /system.slice/postgresql.service matches the rule's omit /system.slice/postgresql.service");
    postgres.cgroup = "/system.slice/nginx.service";
    CHECK_FALSE(omit_reason(cgroups, postgres));
}

TEST_CASE("an omitted cgroup gets one event per episode and no action", "[actions][enforcer][safety]")
{
    EnforcerRig rig;
    PolicyRule rule = kill_rule(0);
    rule.scope = RuleScope::cgroup;
    rule.omit = {"/keep/*"};
    Subject subject;
    subject.scope = RuleScope::cgroup;
    subject.cgroup = "/keep/me";
    subject.cgroup_id = 77;
    rig.enforcer->enforce(rule, subject, written(0), steady_s());
    rig.enforcer->enforce(rule, subject, written(0), steady_s());
    CHECK_FALSE(rig.enforcer->is_acting_on(subject.key()));
    const auto events = rig.seen();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["omitted"] == true);
    CHECK(events[0]["mechanism"] == "none");
    CHECK_THAT(events[0]["reason"].get<std::string>(), Catch::Contains("omit /keep/*"));
}
