// The policy: what the agent watches for and what it does (docs/policy.md,
// a public contract). Parsed from YAML; every error names file, line and key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace diskwatch {

enum class RuleScope { process, cgroup };
enum class RuleAction { alert, throttle, kill };
std::string_view to_string(RuleScope scope);
std::string_view to_string(RuleAction action);

// All given selectors must match; each list matches when any of its globs
// does; an empty list matches everything.
struct RuleMatch {
    std::vector<std::string> comm;
    std::vector<std::string> exe;
    std::vector<std::string> cgroup;  // the cgroup v2 path, as `top` shows it
    std::vector<std::string> mount;   // the mount point the bytes land on
    std::vector<uint32_t> uid;
};

// Any one condition that holds makes the rule match.
struct RuleConditions {
    std::optional<double> write_rate_bps;  // more than this x for_s bytes written ...
    double for_s = 0;                      // ... within the last for_s (0: one evaluation interval)
    std::optional<double> growth_rate_bps; // its share of its mount's net growth, the same way
    std::optional<uint64_t> written_bytes; // bytes written within `within`
    double within_s = 600;
    std::optional<double> eta_full_s;      // its growth would fill its mount sooner than this
};

struct PolicyRule {
    std::string name;
    RuleScope scope = RuleScope::process;
    RuleMatch match;
    RuleConditions when;
    RuleAction action = RuleAction::alert;
    std::optional<double> throttle_to_bps;  // required with throttle
    double throttle_for_s = 600;
    double kill_grace_s = 2;
    int line = 0;  // where the rule starts in its file (1-based), for messages
};

struct ProtectList {
    std::vector<std::string> comm;
    std::vector<std::string> exe;
    std::vector<std::string> cgroup;
};

struct MountAlerts {
    std::optional<double> usage_alert_percent = 80;
    std::optional<double> eta_alert_s = 3600;
};

struct Policy {
    std::string source = "built-in default";  // the file, or "built-in default"
    double interval_s = 0.25;
    bool dry_run = false;
    MountAlerts mounts;
    ProtectList protect;
    std::vector<PolicyRule> rules;
};

// The policy the agent runs without --config: alert only, mount usage at 80%,
// time-to-full under 1 hour, no rule that acts.
Policy default_policy();

// Parses policy YAML. `file` names the source in messages. On error returns
// nullopt and a message "FILE:LINE: KEY: what is wrong" in *error.
std::optional<Policy> parse_policy(const std::string &yaml_text, const std::string &file, std::string *error);

// Reads and parses a policy file, refusing one that anyone but root could have
// changed (not owned by root, or group/world-writable): a policy decides what
// gets killed.
std::optional<Policy> load_policy_file(const std::string &path, std::string *error);

// What check-config warns of in a valid policy: protection anyone can claim,
// rules that act on too little or on everything, rules that can never fire
// or never slow anything. `mount_points`: the host's, for mount globs that
// match none (empty: not checked). One line each, "KEY: why".
std::vector<std::string> policy_warnings(const Policy &policy, const std::vector<std::string> &mount_points);

// shell-style glob: *, ?, [...]; "(?i)" in front: case-insensitive
bool glob_matches(const std::string &pattern, const std::string &text);
bool any_glob_matches(const std::vector<std::string> &patterns, const std::string &text);

}  // namespace diskwatch
