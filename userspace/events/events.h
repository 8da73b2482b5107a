// The NDJSON event schema (docs/events.md, a public contract): builders for
// each event type, and the deduplication that makes a state change one event.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "aggregate/write_report.h"
#include "rules/rule_engine.h"

namespace diskwatch {

// RFC 3339, UTC, microseconds: "2026-11-25T17:40:27.123456Z".
std::string rfc3339_utc(std::chrono::system_clock::time_point time);

// Every event starts with ts, event, host.
nlohmann::json make_event(std::string_view type, const std::string &host);
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

// "action": the fields every action event has, in their order (docs/events.md);
// rule: nullptr for an action outside any rule's episode.
nlohmann::json action_event(const std::string &host, std::string_view action, const std::string *rule,
                            const Subject &subject, std::string_view mechanism, bool dry_run);
// "action" with "action": "release" for something let go outside any rule's
// episode (a restarted agent's reconcile, the guard): no rule, never a dry run.
nlohmann::json release_event(const std::string &host, const Subject &subject, std::string_view mechanism,
                             const std::string &reason);

// "runaway": a rule started (or stopped) holding for a subject.
nlohmann::json runaway_event(const std::string &host, const PolicyRule &rule, const Subject &subject,
                             const RuleMeasures &measures, bool started, bool is_protected);

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
