// Test support: a policy (docs/policy.md) spelled out for AgentRun, one rule
// at a time, so that a test says what its rule is and not how YAML nests it.
#pragma once

#include <string>
#include <vector>

namespace diskwatch::test {

// Writes block YAML; every list value is a double-quoted string, so paths
// and globs ("dw-*", a cgroup's relative path, a mount point) need no care.
//   PolicyYaml().interval("250ms").rule("flood").match("comm", {"dw-*"})
//       .when("20MiB/s", "1s").action("kill").set("kill_grace", "500ms")
class PolicyYaml {
public:
    PolicyYaml &interval(const std::string &every);
    PolicyYaml &protect_comm(const std::string &comm);
    // protect.KEY (comm, exe, cgroup): the globs given.
    PolicyYaml &protect(const std::string &key, const std::vector<std::string> &values);
    // Starts a rule; the calls below are about the last rule started.
    PolicyYaml &rule(const std::string &name);
    PolicyYaml &cgroup_scope();
    PolicyYaml &match(const std::string &key, const std::vector<std::string> &values);
    // when: {write_rate: RATE, for: FOR} (no `for` when empty)
    PolicyYaml &when(const std::string &write_rate, const std::string &for_duration = "");
    PolicyYaml &action(const std::string &action);
    // Any other key of the rule: kill_grace, throttle_to, throttle_for.
    PolicyYaml &set(const std::string &key, const std::string &value);
    std::string str() const;
    operator std::string() const { return str(); }

private:
    struct Rule {
        std::string name;
        bool cgroup_scope = false;
        std::vector<std::string> match;  // "key: [values]" under match:
        std::vector<std::string> when;   // under when:
        std::vector<std::string> other;  // action and the rest, one "key: value" each
    };
    Rule &current();
    std::string interval_;
    std::vector<std::string> protect_;  // "key: [values]" under protect:
    std::vector<Rule> rules_;
};

// A kill rule "flood" after what `policy` already says: a process named
// `comm` (a glob) writing over 20 MiB/s for 1 s to `mount` gets SIGTERM, and
// SIGKILL `grace` later; checked every 250 ms.
PolicyYaml flood_kill_policy(PolicyYaml policy, const std::string &comm, const std::string &mount,
                             const std::string &grace = "500ms");

// The throttle rule the attach, live-view and enforcement tests share: a
// process named `comm` writing over 8 MiB/s for 500 ms is held to 4 MiB/s for
// a minute, checked every 250 ms.
std::string throttle_policy(const std::string &comm);

}  // namespace diskwatch::test
