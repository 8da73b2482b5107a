// The tests' policy builder (tests/support/policy_yaml.h) writes what the
// agent's policy parser reads (docs/policy.md): the integration tests that
// use it test the rule they mean.
#include <catch2/catch.hpp>

#include "rules/policy.h"
#include "support/policy_yaml.h"

using namespace diskwatch;
using diskwatch::test::PolicyYaml;

namespace {

Policy parsed(const std::string &yaml)
{
    std::string error;
    auto policy = parse_policy(yaml, "built.yaml", &error);
    INFO(yaml << "\n" << error);
    REQUIRE(policy);
    return *policy;
}

}  // namespace

TEST_CASE("the tests' policy builder writes rules the policy parser reads back", "[policy][support]")
{
    const Policy policy = parsed(PolicyYaml()
                                     .interval("250ms")
                                     .protect_comm("dw-steady")
                                     .rule("flood")
                                     .match("comm", {"dw-*"})
                                     .match("mount", {"/tmp/a \"b\\c", "/srv"})
                                     .when("20MiB/s", "1s")
                                     .action("kill")
                                     .set("kill_grace", "500ms")
                                     .rule("freeze")
                                     .cgroup_scope()
                                     .match("cgroup", {"/dw-freeze-1.2-3"})
                                     .when("8MiB/s")
                                     .action("throttle")
                                     .set("throttle_to", "2MiB/s")
                                     .set("throttle_for", "3s"));
    CHECK(policy.interval_s == 0.25);
    CHECK(policy.protect.comm == std::vector<std::string>{"dw-steady"});
    REQUIRE(policy.rules.size() == 2);
    const auto &flood = policy.rules[0];
    CHECK(flood.name == "flood");
    CHECK(flood.scope == RuleScope::process);
    CHECK(flood.match.comm == std::vector<std::string>{"dw-*"});
    CHECK(flood.match.mount == std::vector<std::string>{"/tmp/a \"b\\c", "/srv"});  // quoted exactly
    REQUIRE(flood.when.any.size() == 1);
    CHECK(flood.when.any[0].kind == Condition::Kind::write_rate);
    CHECK(flood.when.any[0].threshold == 20.0 * (1 << 20));
    CHECK(flood.when.any[0].window_s == 1.0);
    CHECK(flood.action == RuleAction::kill);
    CHECK(flood.kill_grace_s == 0.5);
    const auto &freeze = policy.rules[1];
    CHECK(freeze.scope == RuleScope::cgroup);
    CHECK(freeze.match.cgroup == std::vector<std::string>{"/dw-freeze-1.2-3"});
    CHECK(freeze.when.longest_for_s() == 0);
    CHECK(freeze.action == RuleAction::throttle);
    CHECK(freeze.throttle_to_bps == 2.0 * (1 << 20));
    CHECK(freeze.throttle_for_s == 3.0);
}

TEST_CASE("the shared throttle policy and an empty one read back as meant", "[policy][support]")
{
    const Policy throttle = parsed(diskwatch::test::throttle_policy("dw-marked"));
    CHECK(throttle.interval_s == 0.25);
    REQUIRE(throttle.rules.size() == 1);
    CHECK(throttle.rules[0].match.comm == std::vector<std::string>{"dw-marked"});
    CHECK(throttle.rules[0].when.lowest(Condition::Kind::write_rate) == 8.0 * (1 << 20));
    CHECK(throttle.rules[0].when.longest_for_s() == 0.5);
    CHECK(throttle.rules[0].action == RuleAction::throttle);
    CHECK(throttle.rules[0].throttle_to_bps == 4.0 * (1 << 20));
    CHECK(throttle.rules[0].throttle_for_s == 60.0);
    CHECK(parsed(PolicyYaml()).rules.empty());
}
