#include "events/events.h"

#include <unistd.h>

#include <cmath>
#include <ctime>

#include "vocabulary/json_names.h"
#include "rules/units.h"
#include "vocabulary/cgroup_workload.h"

namespace diskwatch {

std::string local_host_name()
{
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) != 0)
        return "unknown";
    return name;
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

// Names go through put_name (vocabulary/json_names.h): exact bytes in `<key>_b64`
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

nlohmann::json rules_summary(const Policy &policy)
{
    auto rules = nlohmann::json::array();
    for (const auto &rule : policy.rules)
        rules.push_back({{"name", rule.name}, {"scope", to_string(rule.scope)}, {"action", to_string(rule.action)}});
    return rules;
}

Event agent_start_event(const std::string &host, std::string_view version, int64_t pid, std::string_view hooks,
                        const std::vector<std::string> &programs, const Policy &policy, bool dry_run,
                        uint64_t reconciled)
{
    EventBuilder event(EventType::agent_start, host);
    event.set("version", version);
    event.set("pid", pid);
    event.set("hooks", hooks);
    event.set("programs", programs);
    event.set("policy", policy.source);
    event.set("rules", rules_summary(policy));
    event.set("dry_run", dry_run);
    event.set("interval_s", policy.interval_s);
    event.set("reconciled", reconciled);
    return event.build();
}

Event agent_stop_event(const std::string &host, uint64_t alarms, uint64_t events_dropped)
{
    EventBuilder event(EventType::agent_stop, host);
    event.set("alarms", alarms);
    event.set("events_dropped", events_dropped);
    return event.build();
}

Event policy_reload_event(const std::string &host, const Policy &running, bool dry_run, const std::string *error,
                          const std::string *note)
{
    EventBuilder event(EventType::policy_reload, host);
    event.set("ok", error == nullptr);
    if (error)
        event.set("error", *error);
    if (note)
        event.set("note", *note);
    event.set("source", running.source);
    event.set("rules", rules_summary(running));
    event.set("dry_run", dry_run);
    return event.build();
}

Event runaway_event(const std::string &host, const PolicyRule &rule, const Subject &subject,
                    const RuleMeasures &measures, bool started, bool is_protected, const std::string *protected_reason)
{
    EventBuilder event(EventType::runaway, host);
    event.set("state", started ? "started" : "ended");
    event.set("rule", rule.name);
    event.set("scope", to_string(rule.scope));
    event.set("condition", measures.condition);
    event.set("action", to_string(rule.action));
    event.set("protected", is_protected);
    if (protected_reason)
        event.set("protected_reason", *protected_reason);
    event.set("process", process_json(subject));
    event.set("cgroup", cgroup_json(subject));
    event.set("mount", mount_json(subject));
    event.set("write_bps", std::round(measures.write_bps));
    event.set("growth_bps", std::round(measures.growth_bps));
    event.set("written_bytes", measures.written_bytes);
    event.set("eta_full_s", measures.eta_full_s ? nlohmann::json(std::round(*measures.eta_full_s * 10) / 10)
                                                : nlohmann::json());
    event.set("when", rule_json(rule));
    return event.build();
}

ActionEvent::ActionEvent(const std::string &host, std::string_view action, const std::string *rule,
                         const Subject &subject, std::string_view mechanism, bool dry_run)
    : builder_(EventType::action, host)
{
    builder_.set("action", action);
    builder_.set("rule", rule ? nlohmann::json(*rule) : nlohmann::json());
    builder_.set("scope", to_string(subject.scope));
    builder_.set("dry_run", dry_run);
    builder_.set("mechanism", mechanism);
    builder_.set("protected", false);
    builder_.set("process", process_json(subject));
    builder_.set("cgroup", cgroup_json(subject));
    builder_.set("mount", mount_json(subject));
}

ActionEvent &ActionEvent::rule(const std::string &name)
{
    builder_.set("rule", name);
    return *this;
}

ActionEvent &ActionEvent::dry_run(bool dry_run)
{
    builder_.set("dry_run", dry_run);
    return *this;
}

ActionEvent &ActionEvent::measures(const RuleMeasures &measures)
{
    builder_.set("write_bps", std::round(measures.write_bps));
    builder_.set("growth_bps", std::round(measures.growth_bps));
    builder_.set("condition", measures.condition);
    return *this;
}

ActionEvent &ActionEvent::requested(const PolicyRule::Requester &requester)
{
    builder_.set("requested", requester.by);
    builder_.set("requested_uid", requester.uid);
    builder_.set("requested_pid", requester.pid);
    return *this;
}

ActionEvent &ActionEvent::when(const PolicyRule &rule)
{
    builder_.set("when", rule_json(rule));
    return *this;
}

ActionEvent &ActionEvent::protected_by(const std::string *reason)
{
    builder_.set("protected", true);
    if (reason)
        builder_.set("protected_reason", *reason);
    return *this;
}

ActionEvent &ActionEvent::throttle(double to_bps, double for_s)
{
    builder_.set("throttle_to_bps", to_bps);
    builder_.set("throttle_for_s", for_s);
    return *this;
}

ActionEvent &ActionEvent::kill_grace(double grace_s)
{
    builder_.set("kill_grace_s", grace_s);
    return *this;
}

ActionEvent &ActionEvent::sigstop_counts(uint64_t stops, uint64_t defied)
{
    builder_.set("stops", stops);
    builder_.set("defied", defied);
    return *this;
}

ActionEvent &ActionEvent::signal(std::string_view name)
{
    builder_.set("signal", name);
    return *this;
}

ActionEvent &ActionEvent::targets(uint64_t count)
{
    builder_.set("targets", count);
    return *this;
}

ActionEvent &ActionEvent::pre_kill(nlohmann::json result)
{
    builder_.set("pre_kill", std::move(result));
    return *this;
}

ActionEvent &ActionEvent::instead_of(std::string_view action)
{
    builder_.set("instead_of", action);
    return *this;
}

ActionEvent &ActionEvent::omitted(const std::string &reason)
{
    builder_.set("omitted", true);
    builder_.set("reason", reason);
    return *this;
}

ActionEvent &ActionEvent::snoozed_until(const std::string &until_rfc3339)
{
    builder_.set("snoozed_until", until_rfc3339);
    return *this;
}

ActionEvent &ActionEvent::snooze(double snooze_s, const std::string &until_rfc3339)
{
    builder_.set("snooze_s", snooze_s);
    builder_.set("snoozed_until", until_rfc3339);
    return *this;
}

ActionEvent &ActionEvent::escalated(double stopped_fraction)
{
    builder_.set("escalated", true);
    builder_.set("stopped_fraction", stopped_fraction);
    return *this;
}

ActionEvent &ActionEvent::reason(const std::string &reason)
{
    builder_.set("reason", reason);
    return *this;
}

ActionEvent &ActionEvent::merge(const nlohmann::json &fields)
{
    if (fields.is_object())
        for (const auto &[key, value] : fields.items())
            builder_.set(key, value);
    return *this;
}

Event release_event(const std::string &host, const Subject &subject, std::string_view mechanism,
                    const std::string &reason)
{
    return ActionEvent(host, "release", nullptr, subject, mechanism, false).reason(reason).build();
}

Event throttle_defied_event(const std::string &host, const std::string &rule, RuleScope scope,
                            std::string_view mechanism, const Subject &subject, const DefiedSender &sender,
                            uint64_t count, uint64_t total, std::optional<double> owed_bytes)
{
    EventBuilder event(EventType::throttle_defied, host);
    event.set("rule", rule);
    event.set("scope", std::string(to_string(scope)));
    event.set("mechanism", mechanism);
    event.set("process", process_json(subject));
    event.set("cgroup", cgroup_json(subject));
    nlohmann::json who = {{"pid", sender.pid}, {"uid", sender.uid}};
    put_name(who, "comm", sender.comm);
    event.set("sender", std::move(who));
    event.set("count", count);
    event.set("total", total);
    if (owed_bytes)
        event.set("owed_bytes", *owed_bytes);
    return event.build();
}

Event mount_alert_event(const std::string &host, const MountAlert &alert, double threshold,
                        const std::vector<MountTopWriter> &top_writers)
{
    const bool usage = alert.kind == MountAlert::Kind::usage;
    EventBuilder event(usage ? EventType::mount_usage : EventType::mount_eta, host);
    event.set("state", alert.raised ? "above" : "below");
    event.set("mount", mount_json(alert.mount));
    event.set("write_bps", std::round(alert.mount.write_bps));
    event.set("growth_bps", alert.mount.fill_bps ? nlohmann::json(std::round(*alert.mount.fill_bps)) : nlohmann::json());
    event.set(usage ? "usage_alert_percent" : "eta_alert_s", threshold);
    auto writers = nlohmann::json::array();
    for (const auto &row : top_writers) {
        nlohmann::json writer = {{"pid", row.pid},
                                 {"write_bps", std::round(row.write_bps)},
                                 {"growth_bps", std::round(row.growth_bps)}};
        put_name(writer, "comm", row.comm);
        put_name(writer, "cgroup", row.cgroup);
        writers.push_back(std::move(writer));
    }
    event.set("top_writers", std::move(writers));
    return event.build();
}

Event warning_event(const std::string &host, const std::string &warning)
{
    EventBuilder event(EventType::agent_warning, host);
    event.set("warning", warning);
    return event.build();
}

Event drop_warning_event(const std::string &host, const std::string &warning, uint64_t count, uint64_t total)
{
    EventBuilder event(EventType::agent_warning, host);
    event.set("warning", warning);
    event.set("count", count);
    event.set("total", total);
    return event.build();
}

Event thread_error_event(const std::string &host, const std::string &warning, const std::string &thread,
                         uint64_t count, uint64_t total)
{
    EventBuilder event(EventType::agent_warning, host);
    event.set("warning", warning);
    event.set("thread", thread);
    event.set("count", count);
    event.set("total", total);
    return event.build();
}

Event action_failed_event(const std::string &host, const std::string &warning, const std::string &rule,
                          const Subject &subject)
{
    EventBuilder event(EventType::agent_warning, host);
    event.set("warning", warning);
    event.set("rule", rule);
    event.set("process", process_json(subject));
    event.set("cgroup", cgroup_json(subject));
    return event.build();
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
