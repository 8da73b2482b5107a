// `top` attached to a running agent: its refreshes come from the agent's
// control socket (`snapshot`, docs/control.md) instead of a second copy of the
// BPF programs. The agent keeps every writer's totals since it started; this
// feed diffs successive snapshots (aggregate/snapshot_delta.h), names the files
// of the top rows itself (it runs as root on the same host), and marks the rows
// the agent throttles, kills or holds a rule against.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "aggregate/snapshot_delta.h"
#include "monitor/report_feed.h"

namespace diskwatch {

class AgentFeed : public ReportFeed {
public:
    // Asks the agent on socket_path for its snapshots (one per grouping: the
    // baselines that make `total_bytes` count from now). nullptr, with *why,
    // when no agent answers (no socket, refused, not allowed, timed out).
    static std::unique_ptr<AgentFeed> attach(const std::string &socket_path, std::string *why);

    void wait(int timeout_ms) override;
    std::optional<WriteReport> refresh(const ReportOptions &options, std::string *error) override;
    ReportSource source() const override { return ReportSource::agent; }
    std::string describe() const override;
    std::optional<std::string> act(const OperatorAction &action, std::string *error) override;

    int agent_pid() const { return agent_pid_; }
    size_t agent_programs() const { return agent_programs_; }
    const std::string &hooks() const { return hooks_; }
    const std::string &socket_path() const { return socket_path_; }

    // The agent's acted_on list applied to rows: "kill" over "throttle" over
    // "offender"; a process target marks its pid's rows, a cgroup target the
    // rows in that cgroup or below it.
    static void mark_acted_on(std::vector<ReportRow> &rows, const nlohmann::json &acted_on);

private:
    explicit AgentFeed(std::string socket_path) : socket_path_(std::move(socket_path)) {}
    std::optional<nlohmann::json> ask(GroupBy by, std::string *error);

    std::string socket_path_;
    SnapshotDelta delta_;
    int agent_pid_ = 0;
    size_t agent_programs_ = 0;
    std::string hooks_;
};

}  // namespace diskwatch
