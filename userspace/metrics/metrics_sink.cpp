#include "metrics/metrics_sink.h"

#include <nlohmann/json.hpp>

#include <ctime>

#include "sinks/event_fields.h"

namespace diskwatch::metrics {

void MetricsSink::publish(std::string_view json_line)
{
    ++published_;
    auto event = nlohmann::ordered_json::parse(json_line, nullptr, false);
    const std::string type = string_field(event, "event");
    if (event.is_discarded() || type.empty()) {
        ++unparsable_;
        return;
    }
    metrics_.count_event(type);
    // The policy now running: its rules' action series exist from here, at 0
    // (agent.start; a reload that failed keeps the old policy, and its rules).
    if (type == "agent.start" || type == "policy.reload") {
        const bool ok = type == "agent.start" || bool_field(event, "ok");
        metrics_.record_reload(ok, static_cast<double>(std::time(nullptr)));
        std::vector<AgentMetrics::RuleDeclaration> rules;
        if (const auto it = event.find("rules"); it != event.end() && it->is_array())
            for (const auto &rule : *it)
                if (rule.is_object())
                    rules.push_back({string_field(rule, "name"), string_field(rule, "action")});
        metrics_.declare_rules(rules, bool_field(event, "dry_run"));
    }
    // A release after a restart has no rule ("rule": null): counted under "".
    if (type == "action")
        metrics_.count_action(string_field(event, "rule"), string_field(event, "action"), bool_field(event, "dry_run"));
}

SinkStats MetricsSink::stats() const
{
    SinkStats stats;
    stats.published = published_;
    stats.dropped = unparsable_;
    stats.delivered = stats.published - stats.dropped;
    if (stats.dropped > 0)
        stats.last_error = "events without an \"event\" string";
    return stats;
}

}  // namespace diskwatch::metrics
