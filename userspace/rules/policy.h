// The policy: what the agent watches for and what it does (docs/policy.md,
// a public contract). Parsed from YAML; every error names file, line and key.
#pragma once

#include <cstdint>
#include <map>
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
    // What the container runtime says of the cgroup's container (its state
    // on disk, docs/containers.md): name, image, Compose labels.
    std::vector<std::string> container;
    std::vector<std::string> image;
    std::vector<std::string> compose_project;
    std::vector<std::string> compose_service;
};

// One condition of `when` (docs/policy.md, *Conditions*).
struct Condition {
    enum class Kind { write_rate, growth_rate, written, eta_full, mount_usage };
    Kind kind = Kind::write_rate;
    // write_rate, growth_rate: bytes per second (more than this x window_s
    // within the last window_s); written: bytes (at least this within
    // window_s); eta_full: seconds (its growth fills its mount sooner);
    // mount_usage: percent (the mount it writes to is at least this full).
    double threshold = 0;
    // write_rate, growth_rate: `for` (0: one evaluation interval);
    // written: `within` (10m unless given); others: unused.
    double window_s = 0;
    bool is_rate() const { return kind == Kind::write_rate || kind == Kind::growth_rate; }
};
std::string_view to_string(Condition::Kind kind);

// A rule holds when every condition of `all` holds and, if `any` is not
// empty, at least one of `any` does. The flat form of `when` (today's keys
// side by side) is an `any` list whose rate conditions share one `for`.
struct RuleConditions {
    std::vector<Condition> any;
    std::vector<Condition> all;

    // The first condition of this kind (any, then all); nullptr: none.
    const Condition *first(Condition::Kind kind) const;
    // The lowest and highest threshold of this kind, if the rule has one.
    std::optional<double> lowest(Condition::Kind kind) const;
    std::optional<double> highest(Condition::Kind kind) const;
    // The longest `for` of its rate conditions (0: none, or one evaluation).
    double longest_for_s() const;
    // The longest look-back any condition needs (for, within).
    double longest_window_s() const;
};

struct PolicyRule {
    std::string name;
    RuleScope scope = RuleScope::process;
    RuleMatch match;
    RuleConditions when;
    RuleAction action = RuleAction::alert;
    std::optional<double> throttle_to_bps;  // required with throttle
    double throttle_for_s = 600;
    std::optional<double> escalate_after_s;  // throttle: killed if still over the rule's rate after this long
    // Cgroup scope: whom to act on first. Globs on the cgroup path: `prefer`
    // first, then the others, `avoid` last (the largest writer first within
    // each); `omit` never.
    std::vector<std::string> prefer;
    std::vector<std::string> avoid;
    std::vector<std::string> omit;
    double kill_grace_s = 2;
    std::vector<std::string> pre_kill;  // kill: a command run before the signal (argv; argv[0] absolute)
    double pre_kill_timeout_s = 5;
    int line = 0;  // where the rule starts in its file (1-based), for messages
    // Not the policy's: an operator's request from `top` (the control
    // socket's `act`, docs/control.md). Its events say who asked.
    struct Requester {
        std::string by;  // "top"
        uint32_t uid = 0;
        int32_t pid = 0;
    };
    std::optional<Requester> requested;
};

// The name of the rule an operator's request acts under (never a policy's:
// the policy's names cannot clash with it in the enforcer's bookkeeping, see
// check in rules/policy.cpp).
inline constexpr const char *kRequestedRuleName = "requested from top";

struct ProtectList {
    std::vector<std::string> comm;
    std::vector<std::string> exe;
    std::vector<std::string> cgroup;
    // As in RuleMatch: globs on the container's name, image, Compose labels.
    std::vector<std::string> container;
    std::vector<std::string> image;
    std::vector<std::string> compose_project;
    std::vector<std::string> compose_service;
};

// The enforcer's safety habits (docs/policy.md, *Safety*), host-wide.
struct SafetySettings {
    double action_delay_s = 1;   // after an action on a target, no new action on that target for this long
    uint32_t kill_limit = 10;    // kills host-wide within kill_window_s; past it, kills become alerts (0: no limit)
    double kill_window_s = 60;
    bool recheck_before_sigkill = true;  // SIGKILL only if it kept writing through kill_grace
};

// The flight recorder (docs/explain.md): where the agent keeps its history,
// how much of it, at which resolutions.
struct RecorderSettings {
    bool enabled = true;
    // Empty: $STATE_DIRECTORY/recorder under systemd (StateDirectory=), else
    // kDefaultRecorderDir.
    std::string path;
    uint64_t max_bytes = 64ull << 20;  // the store's cap, reserved in advance
    double resolution_s = 10;          // one record per this much time, for the recent past
    double coarse_resolution_s = 300;  // the downsampled tier, for the older past
    double retention_s = 0;            // records older than this are dropped (0: as far back as max_bytes holds)
    uint32_t rows = 25;                // per grouping and record: the top writers by bytes, and by growth
};
inline constexpr const char *kDefaultRecorderDir = "/var/lib/ebpf-diskwatch/recorder";

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
    SafetySettings safety;
    RecorderSettings recorder;
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
// match none (empty: not checked); `mount_sizes`: their sizes in bytes, for a
// `written` no filesystem the rule watches could hold (empty: not checked).
// One line each, "KEY: why".
std::vector<std::string> policy_warnings(const Policy &policy, const std::vector<std::string> &mount_points,
                                         const std::map<std::string, uint64_t> &mount_sizes = {});

// A glob that matches any text of its selector ("*", "(?i)**", and "/*" for a path).
bool glob_matches_everything(const std::string &pattern);

// shell-style glob: *, ?, [...]; "(?i)" in front: case-insensitive
bool glob_matches(const std::string &pattern, const std::string &text);
bool any_glob_matches(const std::vector<std::string> &patterns, const std::string &text);

}  // namespace diskwatch
