#include "events/events.h"

#include <unistd.h>

#include <cmath>
#include <ctime>

#include "events/json_names.h"
#include "rules/units.h"
#include "vocabulary/cgroup_workload.h"

namespace diskwatch {

std::string rfc3339_utc(std::chrono::system_clock::time_point time)
{
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
    const std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
    std::tm utc {};
    gmtime_r(&seconds, &utc);
    char buffer[64];
    const size_t n = std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(buffer + n, sizeof(buffer) - n, ".%06lldZ", static_cast<long long>(micros % 1000000));
    return buffer;
}

std::string local_host_name()
{
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) != 0)
        return "unknown";
    return name;
}

nlohmann::json make_event(std::string_view type, const std::string &host)
{
    nlohmann::json event;
    event["ts"] = rfc3339_utc(std::chrono::system_clock::now());
    event["event"] = type;
    event["host"] = host;
    return event;
}

// The one cgroup-path derivation (vocabulary/cgroup_workload.h): the events
// name what top's rows name.
std::string unit_of_cgroup(const std::string &path)
{
    return describe_cgroup(path).unit;
}

std::string container_of_cgroup(const std::string &path)
{
    return describe_cgroup(path).container_id;
}

// Names go through put_name (events/json_names.h): exact bytes in `<key>_b64`
// when they are not UTF-8, as in top --json.
nlohmann::json process_json(const Subject &subject)
{
    nlohmann::json json = {{"pid", subject.pid}, {"uid", subject.uid}};
    put_name(json, "comm", subject.comm);
    put_name(json, "exe", subject.exe);
    return json;
}

nlohmann::json cgroup_json(uint64_t id, const std::string &path)
{
    const CgroupWorkload workload = describe_cgroup(path);
    nlohmann::json json = {{"id", id}, {"unit", workload.unit}, {"container", workload.container_id}};
    put_name(json, "path", path);
    return json;
}

nlohmann::json cgroup_json(const Subject &subject)
{
    nlohmann::json json = cgroup_json(subject.cgroup_id, subject.cgroup);
    if (json["container"].get_ref<const std::string &>().empty())
        return json;
    // Names the container's owner chose (docker run --name, labels): anyone's bytes.
    put_name(json, "container_name", subject.container_name);
    put_name(json, "image", subject.container_image);
    put_name(json, "image_id", subject.container_image_id);
    put_name(json, "compose_project", subject.compose_project);
    put_name(json, "compose_service", subject.compose_service);
    return json;
}

nlohmann::json mount_json(const MountReport &mount)
{
    nlohmann::json json = {{"dev", mount.dev}, {"fstype", mount.fstype},
                            {"used_pct", std::round(mount.used_pct * 100) / 100}, {"size_bytes", mount.size_bytes},
                            {"used_bytes", mount.used_bytes}};
    put_name(json, "path", mount.mount);
    json["eta_full_s"] = mount.eta_full_s ? nlohmann::json(std::round(*mount.eta_full_s * 10) / 10) : nlohmann::json();
    return json;
}

nlohmann::json mount_json(const Subject &subject)
{
    nlohmann::json json = {{"dev", subject.dev}, {"fstype", subject.fstype},
                            {"used_pct", std::round(subject.mount_used_pct * 100) / 100}};
    put_name(json, "path", subject.mount);
    json["eta_full_s"] = subject.mount_eta_full_s ? nlohmann::json(std::round(*subject.mount_eta_full_s * 10) / 10)
                                                  : nlohmann::json();
    return json;
}

namespace {

nlohmann::json condition_json(const Condition &condition)
{
    switch (condition.kind) {
    case Condition::Kind::write_rate:
        return {{"write_rate_bps", condition.threshold}, {"for_s", condition.window_s}};
    case Condition::Kind::growth_rate:
        return {{"growth_rate_bps", condition.threshold}, {"for_s", condition.window_s}};
    case Condition::Kind::written:
        return {{"written_bytes", static_cast<uint64_t>(condition.threshold)}, {"within_s", condition.window_s}};
    case Condition::Kind::eta_full:
        return {{"eta_full_s", condition.threshold}};
    case Condition::Kind::mount_usage:
        return {{"mount_usage_percent", condition.threshold}};
    }
    return nlohmann::json::object();
}

}  // namespace

// The flat keys as before `any:`/`all:` (the any conditions merged, the first
// of each kind); "any" as well when they do not merge (two of a kind, rates
// with different `for`), and "all" when the rule has that list.
nlohmann::json rule_json(const PolicyRule &rule)
{
    nlohmann::json when = nlohmann::json::object();
    bool merged = true;
    for (const auto &condition : rule.when.any) {
        const nlohmann::json one = condition_json(condition);  // items() refers to it
        for (const auto &[key, value] : one.items()) {
            if (!when.contains(key))
                when[key] = value;
            else if (when[key] != value || key != "for_s")
                merged = false;
        }
    }
    const auto list = [](const std::vector<Condition> &conditions) {
        auto items = nlohmann::json::array();
        for (const auto &condition : conditions)
            items.push_back(condition_json(condition));
        return items;
    };
    if (!merged)
        when["any"] = list(rule.when.any);
    if (!rule.when.all.empty())
        when["all"] = list(rule.when.all);
    return when;
}

nlohmann::json runaway_event(const std::string &host, const PolicyRule &rule, const Subject &subject,
                             const RuleMeasures &measures, bool started, bool is_protected)
{
    auto event = make_event("runaway", host);
    event["state"] = started ? "started" : "ended";
    event["rule"] = rule.name;
    event["scope"] = to_string(rule.scope);
    event["condition"] = measures.condition;
    event["action"] = to_string(rule.action);
    event["protected"] = is_protected;
    event["process"] = process_json(subject);
    event["cgroup"] = cgroup_json(subject);
    event["mount"] = mount_json(subject);
    event["write_bps"] = std::round(measures.write_bps);
    event["growth_bps"] = std::round(measures.growth_bps);
    event["written_bytes"] = measures.written_bytes;
    event["eta_full_s"] = measures.eta_full_s ? nlohmann::json(std::round(*measures.eta_full_s * 10) / 10)
                                              : nlohmann::json();
    event["when"] = rule_json(rule);
    return event;
}

nlohmann::json action_event(const std::string &host, std::string_view action, const std::string *rule,
                            const Subject &subject, std::string_view mechanism, bool dry_run)
{
    auto event = make_event("action", host);
    event["action"] = action;
    event["rule"] = rule ? nlohmann::json(*rule) : nlohmann::json();
    event["scope"] = to_string(subject.scope);
    event["dry_run"] = dry_run;
    event["mechanism"] = mechanism;
    event["protected"] = false;
    event["process"] = process_json(subject);
    event["cgroup"] = cgroup_json(subject);
    event["mount"] = mount_json(subject);
    return event;
}

nlohmann::json release_event(const std::string &host, const Subject &subject, std::string_view mechanism,
                             const std::string &reason)
{
    auto event = action_event(host, "release", nullptr, subject, mechanism, false);
    event["reason"] = reason;
    return event;
}

bool EventDeduplicator::changed(const std::string &key, const std::string &rule, const std::string &state)
{
    auto [it, inserted] = last_.try_emplace({key, rule}, state);
    if (inserted)
        return true;
    if (it->second == state) {
        ++suppressed_;
        return false;
    }
    it->second = state;
    return true;
}

void EventDeduplicator::forget(const std::string &key, const std::string &rule) { last_.erase({key, rule}); }

}  // namespace diskwatch
