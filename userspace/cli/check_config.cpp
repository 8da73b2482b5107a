#include "cli/check_config.h"

#include <cstdio>

#include "kernel/privileges.h"
#include "rules/policy.h"
#include "resolve/filesystems.h"
#include "resolve/mountinfo.h"
#include "rules/units.h"
#include "views/format.h"

namespace diskwatch {

int run_check_config(const std::string &path)
{
    std::string error;
    auto policy = load_policy_file(path, &error);
    if (!policy) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return kExitFailure;
    }
    std::printf("%s: OK: interval %s, %zu rule%s%s\n", path.c_str(), format_duration(policy->interval_s).c_str(),
                policy->rules.size(), policy->rules.size() == 1 ? "" : "s", policy->dry_run ? ", dry run" : "");
    for (const auto &rule : policy->rules) {
        std::string action(to_string(rule.action));
        if (rule.throttle_to_bps)
            action += " to " + format_size(*rule.throttle_to_bps) + "/s for " + format_duration(rule.throttle_for_s);
        if (rule.action == RuleAction::kill)
            action += " (grace " + format_duration(rule.kill_grace_s) + ")";
        std::printf("  %s (line %d): scope %s, %s\n", rule.name.c_str(), rule.line,
                    std::string(to_string(rule.scope)).c_str(), action.c_str());
    }
    // Valid, but worth a second look: said, not refused (exit 0).
    std::vector<std::string> mount_points;
    std::map<std::string, uint64_t> mount_sizes;
    // statvfs only when a rule has `written` (a dead network mount can make it wait).
    bool written = false;
    for (const auto &rule : policy->rules)
        written = written || rule.when.first(Condition::Kind::written);
    const MountTable mounts = MountTable::load();
    for (const auto &entry : mounts.entries()) {
        mount_points.push_back(entry.mount_point);
        if (!written)
            continue;
        if (const auto usage = read_filesystem_usage(entry.mount_point); usage && usage->size_bytes > 0)
            mount_sizes[entry.mount_point] = usage->size_bytes;
    }
    for (const auto &warning : policy_warnings(*policy, mount_points, mount_sizes))
        std::printf("warning: %s\n", terminal_safe(warning).c_str());
    return kExitOk;
}

}  // namespace diskwatch
