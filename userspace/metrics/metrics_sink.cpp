#include "metrics/metrics_sink.h"

#include <nlohmann/json.hpp>

namespace diskwatch::metrics {

void MetricsSink::publish(std::string_view json_line)
{
    ++published_;
    auto event = nlohmann::json::parse(json_line, nullptr, false);
    if (event.is_discarded() || !event.is_object() || !event.contains("event") || !event["event"].is_string()) {
        ++unparsable_;
        return;
    }
    const std::string type = event["event"];
    metrics_.count_event(type);
    if (type == "action")
        metrics_.count_action(event.value("rule", ""), event.value("action", ""), event.value("dry_run", false));
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
