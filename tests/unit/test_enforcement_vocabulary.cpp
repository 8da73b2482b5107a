// The enforcer's vocabulary (actions/enforcement_vocabulary.h, issue 18): each
// enumerator's one spelling (the `mechanism` of docs/events.md), and the ONE
// choice of the throttle and kill mechanisms, which dry run shares with the
// real path: an enforcer in dry run and one acting, on the same fake cgroup
// (a directory with or without io.max and cgroup.kill), name the same
// mechanism, or fail with the same words. No root: the cgroup is a plain
// directory, and the kernel's throttle is the test's.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "actions/enforcement_vocabulary.h"
#include "actions/enforcer.h"

using namespace diskwatch;

namespace {

// A kernel throttle that starts and holds nothing (its mechanism is all the
// tests here look at).
class NullKernel : public KernelThrottles {
public:
    bool start(RuleScope, uint64_t, double, double, double, std::string *) override { return true; }
    void end(RuleScope, uint64_t) override {}
    std::optional<KernelThrottleState> state(RuleScope, uint64_t) const override { return std::nullopt; }
    std::vector<KernelStop> stopped() const override { return {}; }
    void forget(pid_t) override {}
    void exempt(pid_t) override {}
    void unexempt(pid_t) override {}
    void beat() override {}
};

// A directory standing for the cgroup v2 mount, with one cgroup /grp whose
// control files the test chooses (empty cgroup.procs: no member).
struct FakeCgroupRoot {
    char root[40] = "/tmp/dw-vocabulary-XXXXXX";
    std::string grp;
    FakeCgroupRoot(bool io_max, bool cgroup_kill)
    {
        REQUIRE(::mkdtemp(root));
        grp = std::string(root) + "/grp";
        std::filesystem::create_directories(grp);
        std::ofstream(grp + "/cgroup.procs");
        if (io_max)
            std::ofstream(grp + "/io.max");
        if (cgroup_kill)
            std::ofstream(grp + "/cgroup.kill");
    }
    ~FakeCgroupRoot() { std::filesystem::remove_all(root); }
};

Subject cgroup_subject(const std::string &dev)
{
    Subject subject;
    subject.scope = RuleScope::cgroup;
    subject.cgroup = "/grp";
    subject.cgroup_id = 4242;
    subject.dev = dev;
    return subject;
}

PolicyRule cgroup_rule(RuleAction action)
{
    PolicyRule rule;
    rule.name = "vocabulary";
    rule.scope = RuleScope::cgroup;
    rule.action = action;
    rule.throttle_to_bps = 1 << 20;
    rule.throttle_for_s = 60;
    rule.kill_grace_s = 5;
    return rule;
}

// What an enforcer (dry run or not) says when `rule` holds for the subject:
// the action event's mechanism, or the agent.warning's words.
std::string outcome(const FakeCgroupRoot &cgroups, KernelThrottles *kernel, bool dry_run, const PolicyRule &rule,
                    const Subject &subject)
{
    char state_dir[40] = "/tmp/dw-vocabulary-state-XXXXXX";
    REQUIRE(::mkdtemp(state_dir));
    std::mutex mutex;
    std::vector<nlohmann::json> events;
    {
        EnforcerOptions options;
        options.host = "test";
        options.cgroup2_mount = cgroups.root;
        options.state_dir = state_dir;
        options.agent_pid = ::getpid();
        options.kernel = kernel;
        options.emit = [&](const Event &event) {
            std::lock_guard lock(mutex);
            events.push_back(nlohmann::json::parse(event.line()));
        };
        Enforcer enforcer(std::move(options));
        enforcer.set_policy(Policy{}, dry_run);
        enforcer.enforce(rule, subject, RuleMeasures{}, 1000.0);
    }
    std::filesystem::remove_all(state_dir);
    std::lock_guard lock(mutex);
    REQUIRE_FALSE(events.empty());
    const auto &first = events.front();
    if (first["event"] == "agent.warning")
        return "warning: " + first["warning"].get<std::string>();
    REQUIRE(first["event"] == "action");
    CHECK(first["dry_run"] == dry_run);
    return first["mechanism"].get<std::string>();
}

}  // namespace

TEST_CASE("every mechanism has one spelling, the contract's, and reads back from it",
          "[actions][enforcement-vocabulary]")
{
    const std::vector<std::string> spellings = {"none",    "event", "io.max", "sigstop", "pidfd_send_signal",
                                                "cgroup.kill", "cgroup.freeze"};
    REQUIRE(std::size(kMechanisms) == spellings.size());
    for (size_t i = 0; i < spellings.size(); ++i) {
        CHECK(to_string(kMechanisms[i]) == spellings[i]);
        CHECK(mechanism_from_string(spellings[i]) == kMechanisms[i]);
    }
    for (const Mechanism mechanism : kMechanisms)
        CHECK(mechanism_from_string(to_string(mechanism)) == mechanism);
}

TEST_CASE("a string that is no mechanism reads back as none of them", "[actions][enforcement-vocabulary]")
{
    for (const char *text : {"", "io_max", "IO.MAX", "sigstop ", "kill", "cgroup.freeze\n", "dry_run"})
        CHECK_FALSE(mechanism_from_string(text).has_value());
}

TEST_CASE("every episode state has one spelling and reads back from it, dry run with its action",
          "[actions][enforcement-vocabulary]")
{
    const std::vector<std::string> spellings = {"alert",  "snoozed",   "kill",     "failed", "kill_limited",
                                                "spared", "protected", "throttle", "dry_run"};
    REQUIRE(std::size(kEpisodeStates) == spellings.size());
    for (size_t i = 0; i < spellings.size(); ++i) {
        CHECK(to_string(kEpisodeStates[i]) == spellings[i]);
        CHECK(episode_state_from_string(spellings[i]) == kEpisodeStates[i]);
    }
    for (const char *text : {"", "dry_run:kill", "Alert", "protected_"})
        CHECK_FALSE(episode_state_from_string(text).has_value());
    CHECK(to_string(Episode::dry_run(RuleAction::kill)) == "dry_run:kill");
    CHECK(to_string(Episode::dry_run(RuleAction::throttle)) == "dry_run:throttle");
    CHECK(to_string(Episode{EpisodeState::throttle}) == "throttle");
    CHECK(Episode::dry_run(RuleAction::kill) == Episode::dry_run(RuleAction::kill));
    CHECK_FALSE(Episode::dry_run(RuleAction::kill) == Episode::dry_run(RuleAction::throttle));
    CHECK_FALSE(Episode{EpisodeState::kill} == Episode::dry_run(RuleAction::kill));
}

TEST_CASE("the throttle mechanism: io.max only for a cgroup that has it and a device, else the kernel's stop, else "
          "none with the reason",
          "[actions][enforcement-vocabulary]")
{
    Subject process;
    process.pid = 1234;
    process.dev = "7:0";
    const CgroupOffers everything{true, true};
    const CgroupOffers nothing{};

    SECTION("process scope: the kernel's stop, whatever the offers")
    {
        CHECK(choose_throttle_mechanism(process, everything, true).mechanism == Mechanism::sigstop);
        CHECK(choose_throttle_mechanism(process, nothing, true).mechanism == Mechanism::sigstop);
        const auto none = choose_throttle_mechanism(process, everything, false);
        CHECK_FALSE(none.mechanism.has_value());
        CHECK(none.cannot == "this agent has no kernel throttle (and the cgroup has no io.max)");
    }
    SECTION("a cgroup with io.max and a device: io.max, with or without a kernel throttle")
    {
        CHECK(choose_throttle_mechanism(cgroup_subject("7:0"), {true, false}, true).mechanism == Mechanism::io_max);
        CHECK(choose_throttle_mechanism(cgroup_subject("7:0"), {true, false}, false).mechanism == Mechanism::io_max);
    }
    SECTION("a cgroup with io.max but no device: the kernel's stop, or none")
    {
        CHECK(choose_throttle_mechanism(cgroup_subject(""), {true, false}, true).mechanism == Mechanism::sigstop);
        const auto none = choose_throttle_mechanism(cgroup_subject(""), {true, false}, false);
        CHECK_FALSE(none.mechanism.has_value());
        CHECK_FALSE(none.cannot.empty());
    }
    SECTION("a cgroup without io.max: the kernel's stop, or none")
    {
        CHECK(choose_throttle_mechanism(cgroup_subject("7:0"), {false, true}, true).mechanism == Mechanism::sigstop);
        const auto none = choose_throttle_mechanism(cgroup_subject("7:0"), {false, true}, false);
        CHECK_FALSE(none.mechanism.has_value());
        CHECK(none.cannot == "this agent has no kernel throttle (and the cgroup has no io.max)");
    }
}

TEST_CASE("the kill mechanism: cgroup.kill for a cgroup that has it, else signals through pidfds",
          "[actions][enforcement-vocabulary]")
{
    Subject process;
    process.pid = 1234;
    CHECK(choose_kill_mechanism(process, {true, true}) == Mechanism::pidfd_send_signal);
    CHECK(choose_kill_mechanism(process, {}) == Mechanism::pidfd_send_signal);
    CHECK(choose_kill_mechanism(cgroup_subject(""), {false, true}) == Mechanism::cgroup_kill);
    CHECK(choose_kill_mechanism(cgroup_subject(""), {true, false}) == Mechanism::pidfd_send_signal);
}

TEST_CASE("the offers of a cgroup are its control files", "[actions][enforcement-vocabulary]")
{
    {
        FakeCgroupRoot cgroups(true, false);
        const auto offers = probe_cgroup_offers(cgroups.grp);
        CHECK(offers.io_max);
        CHECK_FALSE(offers.cgroup_kill);
    }
    {
        FakeCgroupRoot cgroups(false, true);
        const auto offers = probe_cgroup_offers(cgroups.grp);
        CHECK_FALSE(offers.io_max);
        CHECK(offers.cgroup_kill);
    }
    CHECK_FALSE(probe_cgroup_offers("/nonexistent/dw-vocabulary").io_max);
}

TEST_CASE("dry run names the mechanism the real path uses, and fails as it fails",
          "[actions][enforcement-vocabulary][enforcer]")
{
    NullKernel kernel;
    struct Case {
        const char *name;
        bool io_max;
        bool cgroup_kill;
        const char *dev;
        bool kernel;
        RuleAction action;
        const char *expected;
    };
    const std::string no_kernel =
        "warning: cannot throttle: this agent has no kernel throttle (and the cgroup has no io.max)";
    const Case cases[] = {
        {"io.max and a device", true, false, "7:0", true, RuleAction::throttle, "io.max"},
        {"io.max and a device, no kernel throttle", true, false, "7:0", false, RuleAction::throttle, "io.max"},
        {"io.max but no device", true, false, "", true, RuleAction::throttle, "sigstop"},
        {"io.max but no device, no kernel throttle", true, false, "", false, RuleAction::throttle, nullptr},
        {"no io.max", false, false, "7:0", true, RuleAction::throttle, "sigstop"},
        {"no io.max, no kernel throttle", false, false, "7:0", false, RuleAction::throttle, nullptr},
        {"cgroup.kill", false, true, "7:0", true, RuleAction::kill, "cgroup.kill"},
        {"no cgroup.kill", false, false, "7:0", true, RuleAction::kill, "pidfd_send_signal"},
    };
    for (const auto &c : cases) {
        INFO(c.name);
        FakeCgroupRoot cgroups(c.io_max, c.cgroup_kill);
        const Subject subject = cgroup_subject(c.dev);
        const PolicyRule rule = cgroup_rule(c.action);
        KernelThrottles *k = c.kernel ? &kernel : nullptr;
        const std::string dry = outcome(cgroups, k, true, rule, subject);
        const std::string real = outcome(cgroups, k, false, rule, subject);
        CHECK(dry == real);
        CHECK(dry == (c.expected ? std::string(c.expected) : no_kernel));
    }
}
