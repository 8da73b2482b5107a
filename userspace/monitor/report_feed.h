// Where `top` gets its refreshes: its own BPF programs (LocalFeed, a
// WriteMonitor), or a running agent's counters over the control socket
// (AgentFeed, userspace/control/agent_feed.h). The views render either alike.
#pragma once

#include <optional>
#include <string>

#include "monitor/write_monitor.h"

namespace diskwatch {

class ReportFeed {
public:
    virtual ~ReportFeed() = default;
    // Waits up to timeout_ms between refreshes (the local feed drains the
    // ring buffer meanwhile).
    virtual void wait(int timeout_ms) = 0;
    // The interval since the previous refresh. nullopt, with *error, when the
    // data could not be had (the agent went away).
    virtual std::optional<WriteReport> refresh(const ReportOptions &options, std::string *error) = 0;
    virtual ReportSource source() const = 0;
    // What the view's header says about it: "hooks tracepoint", "agent 1234 (tracepoint)".
    virtual std::string describe() const = 0;
};

class LocalFeed : public ReportFeed {
public:
    explicit LocalFeed(WriteMonitor &monitor) : monitor_(monitor) {}
    void wait(int timeout_ms) override { monitor_.pump_events(timeout_ms); }
    std::optional<WriteReport> refresh(const ReportOptions &options, std::string *) override
    {
        return monitor_.refresh(options);
    }
    ReportSource source() const override { return ReportSource::local; }
    std::string describe() const override { return "hooks " + std::string(to_string(monitor_.tracer().family())); }

private:
    WriteMonitor &monitor_;
};

}  // namespace diskwatch
