// The NDJSON event schema (docs/events.md, a public contract): builders for
// each event type, and the deduplication that makes a state change one event.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "aggregate/write_report.h"
#include "vocabulary/event.h"
#include "rules/mount_watch.h"
#include "rules/policy.h"
#include "rules/rule_engine.h"

namespace diskwatch {

std::string local_host_name();

// Subjects: {"pid","comm","exe","uid"}, {"id","path","unit","container"},
// {"path","dev","fstype","used_pct","eta_full_s"}.
nlohmann::json process_json(const Subject &subject);
nlohmann::json cgroup_json(uint64_t id, const std::string &path);
// The same, and when the path names a container, what its runtime says of it:
// "container_name", "image", "image_id", "compose_project", "compose_service" ("" when
// unknown; exact bytes in <key>_b64 when not UTF-8). Added fields (docs/events.md).
nlohmann::json cgroup_json(const Subject &subject);
nlohmann::json mount_json(const MountReport &mount);
nlohmann::json mount_json(const Subject &subject);  // what a rule subject knows of its mount
// The systemd unit ("foo.service") and container id (docker/containerd/podman
// scopes) a cgroup path names, or empty.
std::string unit_of_cgroup(const std::string &path);
std::string container_of_cgroup(const std::string &path);

// The rule's own numbers, for runaway and action events.
nlohmann::json rule_json(const PolicyRule &rule);
// [{name, scope, action}] of a policy's rules (agent.start, policy.reload).
nlohmann::json rules_summary(const Policy &policy);

// The builders: one per event type, the only place its fields are set (the
// table of vocabulary/event.cpp lists them; docs/events.md documents them).

// "agent.start": once every program is attached.
Event agent_start_event(const std::string &host, std::string_view version, int64_t pid, std::string_view hooks,
                        const std::vector<std::string> &programs, const Policy &policy, bool dry_run,
                        uint64_t reconciled);
// "agent.stop": after every throttle is released.
Event agent_stop_event(const std::string &host, uint64_t alarms, uint64_t events_dropped);
// "policy.reload": `running` is the policy now running (the old one when
// `error` is set); `note` an explanation when nothing was reloaded.
Event policy_reload_event(const std::string &host, const Policy &running, bool dry_run,
                          const std::string *error = nullptr, const std::string *note = nullptr);

// "runaway": a rule started (or stopped) holding for a subject;
// protected_reason: why it is protected (is_protected), when known.
Event runaway_event(const std::string &host, const PolicyRule &rule, const Subject &subject,
                    const RuleMeasures &measures, bool started, bool is_protected,
                    const std::string *protected_reason = nullptr);

// "action": the fields every action event has (docs/events.md), then what a
// case adds, each through its own method. rule: nullptr for an action outside
// any rule's episode.
class ActionEvent {
public:
    ActionEvent(const std::string &host, std::string_view action, const std::string *rule, const Subject &subject,
                std::string_view mechanism, bool dry_run);
    ActionEvent &rule(const std::string &name);
    ActionEvent &dry_run(bool dry_run);
    ActionEvent &measures(const RuleMeasures &measures);  // write_bps, growth_bps, condition
    ActionEvent &requested(const PolicyRule::Requester &requester);  // requested, requested_uid, requested_pid
    ActionEvent &when(const PolicyRule &rule);
    // protected: true, and protected_reason when a reason is given.
    ActionEvent &protected_by(const std::string *reason);
    ActionEvent &throttle(double to_bps, double for_s);  // throttle_to_bps, throttle_for_s
    ActionEvent &kill_grace(double grace_s);
    ActionEvent &sigstop_counts(uint64_t stops, uint64_t defied);
    ActionEvent &signal(std::string_view name);  // SIGTERM, SIGKILL, none
    ActionEvent &targets(uint64_t count);
    ActionEvent &pre_kill(nlohmann::json result);  // the hook's result (or argv and error)
    ActionEvent &instead_of(std::string_view action);
    ActionEvent &omitted(const std::string &reason);  // omitted: true, and the reason
    ActionEvent &snoozed_until(const std::string &until_rfc3339);
    ActionEvent &snooze(double snooze_s, const std::string &until_rfc3339);
    ActionEvent &escalated(double stopped_fraction);  // escalated: true
    ActionEvent &reason(const std::string &reason);
    // Fields carried as an object from where they were decided (an operator's
    // request: requested*; an escalation's detail): each must be one of the
    // type's; another is dropped and counted, never thrown (this runs between
    // an action and its record: vocabulary/event.h, set_event_schema_strict).
    ActionEvent &merge(const nlohmann::json &fields);
    bool has(std::string_view field) const { return builder_.has(field); }
    const nlohmann::json &get(std::string_view field) const { return builder_.get(field); }
    Event build() const { return builder_.build(); }

private:
    EventBuilder builder_;
};

// "action" with "action": "release" for something let go outside any rule's
// episode (a restarted agent's reconcile, the guard): no rule, never a dry run.
Event release_event(const std::string &host, const Subject &subject, std::string_view mechanism,
                    const std::string &reason);

// "throttle.defied": someone else continued a writer the kernel holds stopped.
struct DefiedSender {
    int64_t pid = 0;
    uint64_t uid = 0;
    std::string comm;
};
Event throttle_defied_event(const std::string &host, const std::string &rule, RuleScope scope,
                            std::string_view mechanism, const Subject &subject, const DefiedSender &sender,
                            uint64_t count, uint64_t total, std::optional<double> owed_bytes);

// "mount.usage" / "mount.eta": a mount crossed its line (raised) or came back.
struct MountTopWriter {
    uint32_t pid = 0;
    std::string comm;
    std::string cgroup;
    double write_bps = 0;
    double growth_bps = 0;
};
Event mount_alert_event(const std::string &host, const MountAlert &alert, double threshold,
                        const std::vector<MountTopWriter> &top_writers);

// "agent.warning", by case (docs/events.md).
Event warning_event(const std::string &host, const std::string &warning);
// Kernel drops of one reason: count since the last warning, total.
Event drop_warning_event(const std::string &host, const std::string &warning, uint64_t count, uint64_t total);
// An internal error a thread caught and survived.
Event thread_error_event(const std::string &host, const std::string &warning, const std::string &thread,
                         uint64_t count, uint64_t total);
// An action that could not be applied.
Event action_failed_event(const std::string &host, const std::string &warning, const std::string &rule,
                          const Subject &subject);
// One event per state change, per key and rule: remembers the last state
// emitted for (key, rule) and says whether a new one is a change.
class EventDeduplicator {
public:
    // True (and remembers) when `state` differs from the last one for (key, rule).
    bool changed(const std::string &key, const std::string &rule, const std::string &state);
    void forget(const std::string &key, const std::string &rule);
    size_t size() const { return last_.size(); }
    uint64_t suppressed() const { return suppressed_; }

private:
    std::map<std::pair<std::string, std::string>, std::string> last_;
    uint64_t suppressed_ = 0;
};

}  // namespace diskwatch
