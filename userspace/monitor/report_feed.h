// Where `top` gets its refreshes: its own BPF programs (LocalFeed, a
// WriteMonitor), or a running agent's counters over the control socket
// (AgentFeed, userspace/control/agent_feed.h). The views render either alike.
#pragma once

#include <optional>
#include <string>

#include "monitor/write_monitor.h"

namespace diskwatch {

// An operator's request from the live view, for the agent behind the feed
// (the control socket's `act`, docs/control.md).
struct OperatorAction {
    std::string action;  // throttle | kill | release | protect
    std::string target;  // a pid or a cgroup path
    double rate_bps = 0; // throttle
    double for_s = 0;    // release: the snooze (0: none)
};

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
    // Only an agent acts: what it did, or nullopt with *error (refused, not
    // allowed, or no agent behind this feed).
    virtual std::optional<std::string> act(const OperatorAction & /*action*/, std::string *error)
    {
        *error = "not attached to an agent";
        return std::nullopt;
    }
    // A recorded feed (top --replay) moves through its refreshes by this many
    // (negative: back); false at either end. A live feed cannot.
    virtual bool step(int /*refreshes*/) { return false; }
    virtual bool replaying() const { return false; }
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
