#include "metrics/metrics_sink.h"

#include <nlohmann/json.hpp>

#include <ctime>

#include "sinks/event_fields.h"

namespace diskwatch::metrics {

void MetricsSink::publish(const Event &typed)
{
    ++published_;
    const EventType type = typed.type();
    if (type == EventType::unknown) {
        ++unparsable_;  // only a line read back (Event::from_line) can be of no known type
        return;
    }
    const auto &event = typed.record();
    metrics_.count_event(std::string(to_string(type)));
    // The policy now running: its rules' action series exist from here, at 0
    // (agent.start; a reload that failed keeps the old policy, and its rules).
    if (type == EventType::agent_start || type == EventType::policy_reload) {
        const bool ok = type == EventType::agent_start || bool_field(event, "ok");
        metrics_.record_reload(ok, static_cast<double>(std::time(nullptr)));
        std::vector<AgentMetrics::RuleDeclaration> rules;
        if (const auto it = event.find("rules"); it != event.end() && it->is_array())
            for (const auto &rule : *it)
                if (rule.is_object())
                    rules.push_back({string_field(rule, "name"), string_field(rule, "action")});
        metrics_.declare_rules(rules, bool_field(event, "dry_run"));
    }
    // A release after a restart has no rule ("rule": null): counted under "".
    if (type == EventType::action)
        metrics_.count_action(string_field(event, "rule"), string_field(event, "action"), bool_field(event, "dry_run"));
}

SinkStats MetricsSink::stats() const
{
    SinkStats stats;
    stats.published = published_;
    stats.dropped = unparsable_;
    stats.delivered = stats.published - stats.dropped;
    if (stats.dropped > 0)
        stats.last_error = "events of no known type";
    return stats;
}

}  // namespace diskwatch::metrics
