#include "rules/policy.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "resolve/numbers.h"
#include "rules/units.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

std::string_view to_string(RuleScope scope) { return scope == RuleScope::process ? "process" : "cgroup"; }

std::string_view to_string(RuleAction action)
{
    switch (action) {
    case RuleAction::alert:
        return "alert";
    case RuleAction::throttle:
        return "throttle";
    case RuleAction::kill:
        return "kill";
    }
    return "alert";
}

std::string_view to_string(Condition::Kind kind)
{
    switch (kind) {
    case Condition::Kind::write_rate:
        return "write_rate";
    case Condition::Kind::growth_rate:
        return "growth_rate";
    case Condition::Kind::written:
        return "written";
    case Condition::Kind::eta_full:
        return "eta_full";
    case Condition::Kind::mount_usage:
        return "mount_usage";
    }
    return "write_rate";
}

const Condition *RuleConditions::first(Condition::Kind kind) const
{
    for (const auto *list : {&any, &all})
        for (const auto &condition : *list)
            if (condition.kind == kind)
                return &condition;
    return nullptr;
}

std::optional<double> RuleConditions::lowest(Condition::Kind kind) const
{
    std::optional<double> lowest;
    for (const auto *list : {&any, &all})
        for (const auto &condition : *list)
            if (condition.kind == kind && (!lowest || condition.threshold < *lowest))
                lowest = condition.threshold;
    return lowest;
}

std::optional<double> RuleConditions::highest(Condition::Kind kind) const
{
    std::optional<double> highest;
    for (const auto *list : {&any, &all})
        for (const auto &condition : *list)
            if (condition.kind == kind && (!highest || condition.threshold > *highest))
                highest = condition.threshold;
    return highest;
}

double RuleConditions::longest_for_s() const
{
    double longest = 0;
    for (const auto *list : {&any, &all})
        for (const auto &condition : *list)
            if (condition.is_rate())
                longest = std::max(longest, condition.window_s);
    return longest;
}

double RuleConditions::longest_window_s() const
{
    double longest = 0;
    for (const auto *list : {&any, &all})
        for (const auto &condition : *list)
            if (condition.is_rate() || condition.kind == Condition::Kind::written)
                longest = std::max(longest, condition.window_s);
    return longest;
}

bool glob_matches(const std::string &pattern, const std::string &text)
{
    // "(?i)" in front: case-insensitive (Suricata's main thread is
    // "Suricata-Main"; the package's files say "suricata").
    constexpr std::string_view kCaseless = "(?i)";
    if (pattern.compare(0, kCaseless.size(), kCaseless) == 0)
        return ::fnmatch(pattern.c_str() + kCaseless.size(), text.c_str(), FNM_CASEFOLD) == 0;
    return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

bool any_glob_matches(const std::vector<std::string> &patterns, const std::string &text)
{
    for (const auto &pattern : patterns)
        if (glob_matches(pattern, text))
            return true;
    return false;
}

bool glob_matches_everything(const std::string &pattern)
{
    std::string_view glob = pattern;
    if (glob.rfind("(?i)", 0) == 0)
        glob.remove_prefix(4);
    if (!glob.empty() && glob[0] == '/')
        glob.remove_prefix(1);  // every path starts with '/', and '*' matches '/' too
    return !glob.empty() && glob.find_first_not_of('*') == std::string_view::npos;
}

namespace {

// "KEY: ..." for each selector list that matches everything.
void warn_match_all(std::vector<std::string> &warnings, const std::string &key,
                    const std::vector<std::string> &globs, const std::string &consequence)
{
    for (const auto &glob : globs)
        if (glob_matches_everything(glob)) {
            warnings.push_back(key + ": \"" + glob + "\" matches everything: " + consequence);
            return;
        }
}

// The rule's `written` that no filesystem it watches could hold.
void warn_written_too_large(std::vector<std::string> &warnings, const PolicyRule &rule, const std::string &key,
                            const std::map<std::string, uint64_t> &mount_sizes)
{
    uint64_t largest = 0;
    for (const auto &[mount, size] : mount_sizes)
        if (rule.match.mount.empty() || any_glob_matches(rule.match.mount, mount))
            largest = std::max(largest, size);
    if (largest == 0)
        return;  // no mount of its here: said by the mount check
    for (const auto *list : {&rule.when.any, &rule.when.all})
        for (const auto &condition : *list)
            if (condition.kind == Condition::Kind::written && condition.threshold > static_cast<double>(largest)) {
                warnings.push_back(key + ".when.written: " + std::to_string(static_cast<uint64_t>(condition.threshold)) +
                                   " bytes is more than the largest filesystem it watches holds (" +
                                   std::to_string(largest) + " bytes): it can only fire on bytes rewritten in place");
                return;
            }
}

}  // namespace

std::vector<std::string> policy_warnings(const Policy &policy, const std::vector<std::string> &mount_points,
                                         const std::map<std::string, uint64_t> &mount_sizes)
{
    std::vector<std::string> warnings;
    if (!policy.protect.comm.empty())
        warnings.push_back("protect.comm: any process can take any name (prctl PR_SET_NAME), so a runaway can claim "
                           "a protected one; protect by cgroup (a systemd unit) or exe instead (docs/policy.md)");
    const std::string protects_all = "every process is protected: no rule will ever throttle or kill";
    warn_match_all(warnings, "protect.comm", policy.protect.comm, protects_all);
    warn_match_all(warnings, "protect.exe", policy.protect.exe, protects_all);
    warn_match_all(warnings, "protect.cgroup", policy.protect.cgroup, protects_all);
    // "*" on a container's name matches only a known one: every container, not every process.
    const std::string protects_containers = "every container the runtime names is protected: no rule will ever "
                                            "throttle or kill a process of one";
    warn_match_all(warnings, "protect.container", policy.protect.container, protects_containers);
    warn_match_all(warnings, "protect.image", policy.protect.image, protects_containers);
    for (const auto &rule : policy.rules) {
        const std::string key = "rules." + rule.name;
        const bool acts = rule.action != RuleAction::alert;
        bool one_evaluation_rate = false;  // a rate condition with no `for`
        for (const auto *list : {&rule.when.any, &rule.when.all})
            for (const auto &condition : *list)
                one_evaluation_rate = one_evaluation_rate || (condition.is_rate() && condition.window_s <= 0);
        const auto &match = rule.match;
        const auto write_rate = rule.when.highest(Condition::Kind::write_rate);
        if (rule.action == RuleAction::kill && one_evaluation_rate)
            warnings.push_back(key + ": kills on one evaluation's rate (no `for`): one burst is enough; give it a "
                                     "window (for: 2s is a budget of 2 s of the rate)");
        if (acts && match.comm.empty() && match.exe.empty() && match.cgroup.empty() && match.uid.empty() &&
            match.container.empty() && match.image.empty() && match.compose_project.empty() &&
            match.compose_service.empty())
            warnings.push_back(key + ": " + std::string(to_string(rule.action)) +
                               "s whatever matches its mounts: no comm, exe, cgroup, uid or container selector");
        const std::string selects_all = "the selector selects nothing (as if it were not given)";
        warn_match_all(warnings, key + ".match.comm", match.comm, selects_all);
        warn_match_all(warnings, key + ".match.exe", match.exe, selects_all);
        warn_match_all(warnings, key + ".match.cgroup", match.cgroup, selects_all);
        warn_match_all(warnings, key + ".match.mount", match.mount, selects_all);
        warn_match_all(warnings, key + ".omit", rule.omit, "the rule never acts");
        if (rule.throttle_to_bps && write_rate && *rule.throttle_to_bps >= *write_rate)
            warnings.push_back(key + ".throttle_to: at or above the rule's own write_rate: the throttle slows nothing "
                                     "the rule catches");
        if (!mount_points.empty() && !match.mount.empty()) {
            bool any = false;
            for (const auto &point : mount_points)
                any = any || any_glob_matches(match.mount, point);
            if (!any)
                warnings.push_back(key + ".match.mount: matches no mount point here: the rule never fires on this host");
        }
        warn_written_too_large(warnings, rule, key, mount_sizes);
    }
    return warnings;
}

Policy default_policy()
{
    Policy policy;
    policy.source = "built-in default";
    policy.interval_s = 0.25;
    policy.mounts.usage_alert_percent = 80;
    policy.mounts.eta_alert_s = 3600;
    return policy;
}

namespace {

// A parse error, carrying what the message needs: where and which key.
struct PolicyError {
    int line;
    std::string key;
    std::string what;
};

int line_of(const YAML::Node &node) { return node.Mark().line >= 0 ? node.Mark().line + 1 : 0; }

class Parser {
public:
    Policy parse(const YAML::Node &root)
    {
        Policy policy;
        if (root.IsNull())
            return policy;  // an empty file: defaults, no rules
        expect_map(root, "(top level)");
        check_keys(root, "", {"interval", "dry_run", "mounts", "protect", "safety", "recorder", "rules"});
        if (auto node = root["interval"]) {
            policy.interval_s = duration(node, "interval");
            if (policy.interval_s < 0.01 || policy.interval_s > 60)
                fail(node, "interval", "must be between 10ms and 60s");
        }
        if (auto node = root["dry_run"])
            policy.dry_run = boolean(node, "dry_run");
        if (auto node = root["mounts"]) {
            if (node.IsNull()) {
                policy.mounts.usage_alert_percent.reset();
                policy.mounts.eta_alert_s.reset();
            } else {
                expect_map(node, "mounts");
                check_keys(node, "mounts.", {"usage_alert_percent", "eta_alert"});
                policy.mounts.usage_alert_percent.reset();
                policy.mounts.eta_alert_s.reset();
                if (auto percent = node["usage_alert_percent"]) {
                    const double value = number(percent, "mounts.usage_alert_percent");
                    if (value <= 0 || value > 100)
                        fail(percent, "mounts.usage_alert_percent", "must be in (0, 100]");
                    policy.mounts.usage_alert_percent = value;
                }
                if (auto eta = node["eta_alert"])
                    policy.mounts.eta_alert_s = duration(eta, "mounts.eta_alert");
            }
        }
        if (auto node = root["protect"]) {
            if (!node.IsNull()) {
                expect_map(node, "protect");
                check_keys(node, "protect.",
                           {"comm", "exe", "cgroup", "container", "image", "compose_project", "compose_service"});
                policy.protect.comm = strings(node["comm"], "protect.comm");
                policy.protect.exe = strings(node["exe"], "protect.exe");
                policy.protect.cgroup = strings(node["cgroup"], "protect.cgroup");
                policy.protect.container = strings(node["container"], "protect.container");
                policy.protect.image = strings(node["image"], "protect.image");
                policy.protect.compose_project = strings(node["compose_project"], "protect.compose_project");
                policy.protect.compose_service = strings(node["compose_service"], "protect.compose_service");
            }
        }
        if (auto node = root["safety"]; node && !node.IsNull())
            policy.safety = safety(node);
        if (auto node = root["recorder"]; node && !node.IsNull())
            policy.recorder = recorder(node);
        if (auto node = root["rules"]) {
            if (!node.IsNull() && !node.IsSequence())
                fail(node, "rules", "must be a list of rules");
            std::set<std::string> names;
            for (size_t i = 0; node.IsSequence() && i < node.size(); ++i) {
                PolicyRule rule = parse_rule(node[i], "rules[" + std::to_string(i) + "]");
                if (!names.insert(rule.name).second)
                    fail(node[i]["name"], "rules[" + std::to_string(i) + "].name",
                         "duplicate rule name \"" + rule.name + "\"");
                policy.rules.push_back(std::move(rule));
            }
        }
        return policy;
    }

private:
    [[noreturn]] static void fail(const YAML::Node &node, const std::string &key, const std::string &what)
    {
        throw PolicyError{line_of(node), key, what};
    }

    static void expect_map(const YAML::Node &node, const std::string &key)
    {
        if (!node.IsMap())
            fail(node, key, "must be a mapping of keys to values");
    }

    // Unknown keys are errors: a typo ("write_rte") must not silently disable a rule.
    // Unknown keys (a typo must not silently disable a rule) and keys given
    // twice (YAML keeps the first; `action: kill` then `action: alert` would
    // kill) are errors.
    static void check_keys(const YAML::Node &map, const std::string &prefix, std::initializer_list<const char *> known)
    {
        std::map<std::string, int> seen;  // key -> its first line
        for (const auto &entry : map) {
            const std::string key = entry.first.Scalar();
            if (auto [first, fresh] = seen.emplace(key, line_of(entry.first)); !fresh)
                fail(entry.first, prefix + key,
                     "given twice (first at line " + std::to_string(first->second) +
                         "): YAML would keep one and silently drop the other");
            bool found = false;
            for (const char *name : known)
                found = found || key == name;
            if (!found) {
                std::string list;
                for (const char *name : known)
                    list += std::string(list.empty() ? "" : ", ") + name;
                fail(entry.first, prefix + key, "unknown key (expected one of: " + list + ")");
            }
        }
    }

    static std::string scalar(const YAML::Node &node, const std::string &key)
    {
        if (!node.IsScalar())
            fail(node, key, "must be a single value");
        return node.Scalar();
    }

    static double duration(const YAML::Node &node, const std::string &key)
    {
        std::string error;
        auto value = parse_duration(scalar(node, key), &error);
        if (!value)
            fail(node, key, error);
        return *value;
    }

    static double rate(const YAML::Node &node, const std::string &key)
    {
        std::string error;
        auto value = parse_rate(scalar(node, key), &error);
        if (!value)
            fail(node, key, error);
        if (*value <= 0)
            fail(node, key, "must be more than 0");
        return *value;
    }

    static uint64_t size(const YAML::Node &node, const std::string &key)
    {
        std::string error;
        auto value = parse_size(scalar(node, key), &error);
        if (!value)
            fail(node, key, error);
        return *value;
    }

    static double number(const YAML::Node &node, const std::string &key)
    {
        const std::string text = scalar(node, key);
        std::string_view digits = text;
        if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-')
            digits.remove_prefix(1);  // "+5", as strtod reads it
        if (const auto value = parse_double(digits); value && std::isfinite(*value))
            return *value;
        fail(node, key, "\"" + text + "\" is not a number");
    }

    static bool boolean(const YAML::Node &node, const std::string &key)
    {
        const std::string text = scalar(node, key);
        if (text == "true")
            return true;
        if (text == "false")
            return false;
        fail(node, key, "\"" + text + "\" is not true or false");
    }

    static std::vector<std::string> strings(const YAML::Node &node, const std::string &key)
    {
        std::vector<std::string> values;
        if (!node || node.IsNull())
            return values;
        if (node.IsScalar())
            fail(node, key, "must be a list, like [\"" + node.Scalar() + "\"]");
        if (!node.IsSequence())
            fail(node, key, "must be a list of strings");
        for (size_t i = 0; i < node.size(); ++i) {
            const std::string value = scalar(node[i], key + "[" + std::to_string(i) + "]");
            if (value.empty())
                fail(node[i], key + "[" + std::to_string(i) + "]", "an empty pattern matches nothing");
            values.push_back(value);
        }
        return values;
    }

    static SafetySettings safety(const YAML::Node &node)
    {
        expect_map(node, "safety");
        check_keys(node, "safety.", {"action_delay", "kill_limit", "kill_window", "recheck_before_sigkill"});
        SafetySettings settings;
        if (auto value = node["action_delay"])
            settings.action_delay_s = duration(value, "safety.action_delay");
        if (auto value = node["kill_limit"]) {
            const auto limit = parse_integer<uint32_t>(scalar(value, "safety.kill_limit"));
            if (!limit)
                fail(value, "safety.kill_limit", "\"" + value.Scalar() + "\" is not a whole number of kills (0: no limit)");
            settings.kill_limit = *limit;
        }
        if (auto value = node["kill_window"]) {
            settings.kill_window_s = duration(value, "safety.kill_window");
            if (settings.kill_window_s <= 0)
                fail(value, "safety.kill_window", "must be more than 0");
        }
        if (auto value = node["recheck_before_sigkill"])
            settings.recheck_before_sigkill = boolean(value, "safety.recheck_before_sigkill");
        return settings;
    }

    static RecorderSettings recorder(const YAML::Node &node)
    {
        expect_map(node, "recorder");
        check_keys(node, "recorder.",
                   {"enabled", "path", "max_size", "resolution", "coarse_resolution", "retention", "rows"});
        RecorderSettings settings;
        if (auto value = node["enabled"])
            settings.enabled = boolean(value, "recorder.enabled");
        if (auto value = node["path"]) {
            settings.path = scalar(value, "recorder.path");
            if (settings.path.empty() || settings.path[0] != '/')
                fail(value, "recorder.path", "must be an absolute directory path");
            for (const char *pseudo : {"/proc", "/sys", "/dev"})
                if (settings.path == pseudo || settings.path.rfind(std::string(pseudo) + "/", 0) == 0)
                    fail(value, "recorder.path", std::string("must be on a disk, not under ") + pseudo);
        }
        if (auto value = node["max_size"]) {
            settings.max_bytes = size(value, "recorder.max_size");
            if (settings.max_bytes < (1ull << 20) || settings.max_bytes > (64ull << 30))
                fail(value, "recorder.max_size", "must be between 1MiB and 64GiB");
        }
        if (auto value = node["resolution"]) {
            settings.resolution_s = duration(value, "recorder.resolution");
            if (settings.resolution_s < 1 || settings.resolution_s > 3600)
                fail(value, "recorder.resolution", "must be between 1s and 1h");
        }
        if (auto value = node["coarse_resolution"]) {
            settings.coarse_resolution_s = duration(value, "recorder.coarse_resolution");
            if (settings.coarse_resolution_s > 86400)
                fail(value, "recorder.coarse_resolution", "must be at most 1d");
        }
        // Whole multiples: each fine window then lies in one coarse window,
        // which is how a reader tells what a coarse window already holds.
        const double ratio = settings.coarse_resolution_s / settings.resolution_s;
        if (ratio < 2 || std::abs(ratio - std::round(ratio)) > 1e-9) {
            if (node["coarse_resolution"])
                fail(node["coarse_resolution"], "recorder.coarse_resolution",
                     "must be a whole multiple of recorder.resolution, at least twice it (it downsamples it)");
            fail(node["resolution"], "recorder.resolution",
                 "must divide recorder.coarse_resolution (default 5m) at least twice: set coarse_resolution too");
        }
        if (auto value = node["retention"])
            settings.retention_s = duration(value, "recorder.retention");
        if (auto value = node["rows"]) {
            const auto rows = parse_integer<uint32_t>(scalar(value, "recorder.rows"));
            if (!rows || *rows < 1 || *rows > 1000)
                fail(value, "recorder.rows", "must be a whole number from 1 to 1000");
            settings.rows = *rows;
        }
        return settings;
    }

    // `when`: the flat form (conditions side by side: any of them; one `for`
    // for both rates), or `any:` and `all:` lists of one condition each.
    static RuleConditions conditions(const YAML::Node &when, const std::string &key)
    {
        RuleConditions result;
        if (!when["any"] && !when["all"]) {
            result.any = condition_set(when, key, false);
            return result;
        }
        check_keys(when, key + ".", {"any", "all"});
        for (const char *list_name : {"any", "all"}) {
            const auto list = when[list_name];
            if (!list)
                continue;
            const std::string list_key = key + "." + list_name;
            if (!list.IsSequence() || list.size() == 0)
                fail(list, list_key, "must be a list of conditions, like [{write_rate: 50MiB/s, for: 2s}]");
            auto &into = std::string_view(list_name) == "any" ? result.any : result.all;
            for (size_t i = 0; i < list.size(); ++i) {
                const std::string item_key = list_key + "[" + std::to_string(i) + "]";
                expect_map(list[i], item_key);
                auto items = condition_set(list[i], item_key, true);
                into.insert(into.end(), items.begin(), items.end());
            }
        }
        return result;
    }

    // A map of conditions. single: one condition (a list item), with its own
    // `for` or `within`.
    static std::vector<Condition> condition_set(const YAML::Node &map, const std::string &key, bool single)
    {
        if (single)
            check_keys(map, key + ".",
                       {"write_rate", "for", "growth_rate", "written", "within", "eta_full", "mount_usage_percent"});
        else  // the flat form, where any: and all: could have been given instead
            check_keys(map, key + ".",
                       {"write_rate", "for", "growth_rate", "written", "within", "eta_full", "mount_usage_percent", "any",
                        "all"});
        std::vector<Condition> found;
        double for_s = 0;
        if (auto value = map["for"])
            for_s = duration(value, key + ".for");
        if (auto value = map["write_rate"])
            found.push_back({Condition::Kind::write_rate, rate(value, key + ".write_rate"), for_s});
        if (auto value = map["growth_rate"])
            found.push_back({Condition::Kind::growth_rate, rate(value, key + ".growth_rate"), for_s});
        if (auto value = map["written"]) {
            Condition written {Condition::Kind::written, static_cast<double>(size(value, key + ".written")), 600};
            if (auto within = map["within"]) {
                written.window_s = duration(within, key + ".within");
                if (written.window_s <= 0)
                    fail(within, key + ".within", "must be more than 0");
            }
            found.push_back(written);
        }
        if (auto value = map["eta_full"])
            found.push_back({Condition::Kind::eta_full, duration(value, key + ".eta_full"), 0});
        if (auto value = map["mount_usage_percent"]) {
            const double percent = number(value, key + ".mount_usage_percent");
            if (percent <= 0 || percent > 100)
                fail(value, key + ".mount_usage_percent", "must be in (0, 100]");
            found.push_back({Condition::Kind::mount_usage, percent, 0});
        }
        if (map["within"] && !map["written"])
            fail(map["within"], key + ".within", "within: only applies to written:");
        if (map["for"] && !map["write_rate"] && !map["growth_rate"])
            fail(map["for"], key + ".for", "for: only applies to write_rate or growth_rate");
        if (found.empty())
            fail(map, key, "needs at least one of write_rate, growth_rate, written, eta_full, mount_usage_percent");
        if (single && found.size() > 1)
            fail(map, key,
                 "one condition per list item (write_rate, growth_rate, written, eta_full or mount_usage_percent, "
                 "with its for: or within:); give each its own - item");
        return found;
    }

    PolicyRule parse_rule(const YAML::Node &node, const std::string &at)
    {
        expect_map(node, at);
        PolicyRule rule;
        rule.line = line_of(node);
        auto name = node["name"];
        if (!name)
            fail(node, at + ".name", "every rule needs a name");
        rule.name = scalar(name, at + ".name");
        if (rule.name.empty())
            fail(name, at + ".name", "must not be empty");
        if (rule.name == kRequestedRuleName)
            fail(name, at + ".name", std::string("\"") + kRequestedRuleName + "\" is the name of what an operator asks from top");
        const std::string prefix = "rules." + rule.name + ".";  // messages name the rule, not its index
        check_keys(node, prefix,
                   {"name", "scope", "match", "when", "action", "throttle_to", "throttle_for", "kill_grace", "pre_kill",
                    "pre_kill_timeout", "escalate_after", "prefer", "avoid", "omit"});

        if (auto scope = node["scope"]) {
            const std::string value = scalar(scope, prefix + "scope");
            if (value == "process")
                rule.scope = RuleScope::process;
            else if (value == "cgroup")
                rule.scope = RuleScope::cgroup;
            else
                fail(scope, prefix + "scope", "\"" + value + "\" is not process or cgroup");
        }
        if (auto match = node["match"]; match && !match.IsNull()) {
            expect_map(match, prefix + "match");
            check_keys(match, prefix + "match.",
                       {"comm", "exe", "cgroup", "mount", "uid", "container", "image", "compose_project",
                        "compose_service"});
            rule.match.container = strings(match["container"], prefix + "match.container");
            rule.match.image = strings(match["image"], prefix + "match.image");
            rule.match.compose_project = strings(match["compose_project"], prefix + "match.compose_project");
            rule.match.compose_service = strings(match["compose_service"], prefix + "match.compose_service");
            rule.match.comm = strings(match["comm"], prefix + "match.comm");
            rule.match.exe = strings(match["exe"], prefix + "match.exe");
            rule.match.cgroup = strings(match["cgroup"], prefix + "match.cgroup");
            rule.match.mount = strings(match["mount"], prefix + "match.mount");
            for (const auto &uid : strings(match["uid"], prefix + "match.uid")) {
                const auto value = parse_integer<uint32_t>(uid);
                if (!value)
                    fail(match["uid"], prefix + "match.uid", "\"" + uid + "\" is not a numeric uid");
                rule.match.uid.push_back(*value);
            }
        }
        auto when = node["when"];
        if (!when || when.IsNull())
            fail(node, prefix + "when", "every rule needs at least one condition under when:");
        expect_map(when, prefix + "when");
        rule.when = conditions(when, prefix + "when");

        if (auto action = node["action"]) {
            const std::string value = scalar(action, prefix + "action");
            if (value == "alert")
                rule.action = RuleAction::alert;
            else if (value == "throttle")
                rule.action = RuleAction::throttle;
            else if (value == "kill")
                rule.action = RuleAction::kill;
            else
                fail(action, prefix + "action", "\"" + value + "\" is not alert, throttle or kill");
        }
        if (auto value = node["throttle_to"])
            rule.throttle_to_bps = rate(value, prefix + "throttle_to");
        if (auto value = node["throttle_for"]) {
            rule.throttle_for_s = duration(value, prefix + "throttle_for");
            if (rule.throttle_for_s <= 0)
                fail(value, prefix + "throttle_for", "must be more than 0");
        }
        if (auto value = node["kill_grace"])
            rule.kill_grace_s = duration(value, prefix + "kill_grace");
        if (rule.action == RuleAction::throttle && !rule.throttle_to_bps)
            fail(node["action"], prefix + "throttle_to", "action: throttle needs throttle_to (a rate, like 1MiB/s)");
        if (rule.action != RuleAction::throttle && (node["throttle_to"] || node["throttle_for"]))
            fail(node["throttle_to"] ? node["throttle_to"] : node["throttle_for"],
                 prefix + (node["throttle_to"] ? "throttle_to" : "throttle_for"), "only applies to action: throttle");
        if (auto value = node["escalate_after"]) {
            if (rule.action != RuleAction::throttle)
                fail(value, prefix + "escalate_after", "only applies to action: throttle");
            rule.escalate_after_s = duration(value, prefix + "escalate_after");
            if (*rule.escalate_after_s <= 0 || *rule.escalate_after_s >= rule.throttle_for_s)
                fail(value, prefix + "escalate_after", "must be more than 0 and less than throttle_for");
        }
        for (const char *key : {"prefer", "avoid", "omit"}) {
            if (!node[key])
                continue;
            if (rule.scope != RuleScope::cgroup)
                fail(node[key], prefix + key, "only applies to scope: cgroup (globs on the cgroup path)");
            auto &globs = std::string_view(key) == "prefer" ? rule.prefer
                          : std::string_view(key) == "avoid"  ? rule.avoid
                                                              : rule.omit;
            globs = strings(node[key], prefix + key);
        }
        // A kill's settings: for kill rules, and for throttle rules that escalate to one.
        const bool kills = rule.action == RuleAction::kill || rule.escalate_after_s;
        const char *kills_only = "only applies to action: kill (or a throttle with escalate_after)";
        if (!kills && node["kill_grace"])
            fail(node["kill_grace"], prefix + "kill_grace", kills_only);
        rule.pre_kill = strings(node["pre_kill"], prefix + "pre_kill");
        if (!rule.pre_kill.empty() && rule.pre_kill[0][0] != '/')
            fail(node["pre_kill"], prefix + "pre_kill[0]",
                 "\"" + rule.pre_kill[0] + "\": the program must be an absolute path (it is run without a shell)");
        if (auto value = node["pre_kill_timeout"]) {
            rule.pre_kill_timeout_s = duration(value, prefix + "pre_kill_timeout");
            if (rule.pre_kill_timeout_s <= 0 || rule.pre_kill_timeout_s > 60)
                fail(value, prefix + "pre_kill_timeout", "must be more than 0 and at most 60s");
        }
        for (const char *key : {"pre_kill", "pre_kill_timeout"})
            if (!kills && node[key])
                fail(node[key], prefix + key, kills_only);
        return rule;
    }
};

// The line (1-based) of the innermost flow collection ('[' or '{') that the
// text never closes, or 0. yaml-cpp reports an unclosed one where it gave up
// looking for its end (often the last line), not where the problem starts.
int unclosed_flow_line(const std::string &text)
{
    std::vector<std::pair<char, int>> open;
    int line = 1;
    char quote = 0;
    bool line_start = true, after_space = true;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n') {
            ++line;
            line_start = after_space = true;
            if (quote == '\'')
                continue;
            continue;
        }
        if (quote == '"') {
            if (c == '\\')
                ++i;
            else if (c == '"')
                quote = 0;
            continue;
        }
        if (quote == '\'') {
            if (c == '\'' && i + 1 < text.size() && text[i + 1] == '\'')
                ++i;
            else if (c == '\'')
                quote = 0;
            continue;
        }
        if (c == '#' && (line_start || after_space)) {
            while (i + 1 < text.size() && text[i + 1] != '\n')
                ++i;
            continue;
        }
        if (c == '"' || c == '\'')
            quote = c;
        else if (c == '[' || c == '{')
            open.emplace_back(c, line);
        else if ((c == ']' || c == '}') && !open.empty() && open.back().first == (c == ']' ? '[' : '{'))
            open.pop_back();
        line_start = false;
        after_space = c == ' ' || c == '\t';
    }
    return open.empty() ? 0 : open.back().second;
}

}  // namespace

std::optional<Policy> parse_policy(const std::string &yaml_text, const std::string &file, std::string *error)
{
    try {
        YAML::Node root = YAML::Load(yaml_text);
        Policy policy = Parser().parse(root);
        policy.source = file;
        return policy;
    } catch (const PolicyError &e) {
        *error = file + ":" + std::to_string(e.line) + ": " + cut_for_message(e.key, 120) + ": " +
                 cut_for_message(e.what, 400);
    } catch (const YAML::Exception &e) {
        const int unclosed = unclosed_flow_line(yaml_text);
        if (unclosed > 0 && unclosed <= e.mark.line + 1)
            *error = file + ":" + std::to_string(unclosed) + ": (syntax): a [ or { opened on this line is never closed (" +
                     cut_for_message(e.msg, 300) + " at line " + std::to_string(e.mark.line + 1) + ")";
        else
            *error = file + ":" + std::to_string(e.mark.line + 1) + ": (syntax): " + cut_for_message(e.msg, 400);
    }
    return std::nullopt;
}

std::optional<Policy> load_policy_file(const std::string &path, std::string *error)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *error = path + ": cannot open: " + errno_text(errno);
        return std::nullopt;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        *error = path + ": fstat: " + errno_text(errno);
        ::close(fd);
        return std::nullopt;
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        *error = path + ": refused: not a regular file";
        return std::nullopt;
    }
    // The policy decides what gets killed: anyone who can change it can kill.
    if (st.st_uid != 0) {
        ::close(fd);
        *error = path + ": refused: owned by uid " + std::to_string(st.st_uid) + ", not root (chown root " + path + ")";
        return std::nullopt;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        ::close(fd);
        *error = path + ": refused: writable by " + ((st.st_mode & S_IWOTH) ? "everyone" : "its group") +
                 " (chmod go-w " + path + ")";
        return std::nullopt;
    }
    std::string text;
    char buffer[65536];
    ssize_t got;
    while ((got = ::read(fd, buffer, sizeof(buffer))) > 0)
        text.append(buffer, static_cast<size_t>(got));
    const int read_errno = errno;
    ::close(fd);
    if (got < 0) {
        *error = path + ": read: " + errno_text(read_errno);
        return std::nullopt;
    }
    return parse_policy(text, path, error);
}

}  // namespace diskwatch
