// Counts the agent's events into AgentMetrics from the events themselves (their
// type and record, vocabulary/event.h; no text is parsed): every event type into ebpf_diskwatch_events_total, every "action"
// event into ebpf_diskwatch_actions_total{rule, action, dry_run}, and the
// policy each agent.start and policy.reload brings into the rules' series at 0
// and config_last_reload_successful. Added to
// the agent's sinks, it needs no call from the rule or action path.
#pragma once

#include <atomic>

#include "metrics/agent_metrics.h"
#include "sinks/event_sink.h"

namespace diskwatch::metrics {

class MetricsSink final : public EventSink {
public:
    explicit MetricsSink(AgentMetrics &metrics) : metrics_(metrics) {}
    void publish(const Event &event) override;
    SinkStats stats() const override;
    std::string name() const override { return "metrics"; }

private:
    AgentMetrics &metrics_;
    std::atomic<uint64_t> published_ {0};
    std::atomic<uint64_t> unparsable_ {0};
};

}  // namespace diskwatch::metrics
