// Test support: run `ebpf-diskwatch agent` with a policy written by the test,
// read its NDJSON events (docs/events.md) as they come, stop it however the
// test ends.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/spawn.h"

namespace diskwatch::test {

// The guard an agent process started (its one child, forked by its main
// thread); 0 when there is none.
pid_t guard_of(pid_t agent);

class AgentRun {
public:
    // Writes `policy_yaml` (root-owned, 0644) to a scratch directory and
    // starts the agent with --config, --json-out and --state-dir there (plus
    // extra arguments); waits until agent.start is on the stream. An empty
    // policy_yaml: no --config (the built-in default policy).
    // state_dir: share one between two runs to test reconciliation.
    // events_path: where --json-out goes (empty: the scratch directory).
    AgentRun(const std::string &policy_yaml, const std::vector<std::string> &extra_arguments = {},
             const std::string &state_dir = "", const std::string &events_path = "");
    ~AgentRun();  // SIGTERM (or SIGKILL if it hangs), scratch removed
    AgentRun(const AgentRun &) = delete;
    AgentRun &operator=(const AgentRun &) = delete;

    bool started() const { return started_; }
    pid_t pid() const { return process_->pid(); }
    // The agent's guard (agent/guard.h): its child; 0 when it has none (yet).
    pid_t guard_pid() const { return guard_of(pid()); }
    const std::string &policy_path() const { return policy_path_; }
    const std::string &state_dir() const { return state_dir_; }
    void rewrite_policy(const std::string &policy_yaml);
    void signal(int signo) const { process_->signal(signo); }
    // SIGTERM and wait for exit; returns the exit status.
    std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

    // Every event so far (re-reads the file).
    std::vector<nlohmann::json> events() const;
    // Waits for the first event satisfying `match`; nullopt on timeout.
    std::optional<nlohmann::json> wait_for(const std::function<bool(const nlohmann::json &)> &match,
                                           std::chrono::milliseconds timeout) const;
    // What it logged so far: complete after stop(); while it runs, as far as
    // wait_for_stderr() has read.
    std::string stderr_text() const { return process_->err(); }
    bool wait_for_stderr(const std::string &needle, std::chrono::milliseconds timeout)
    {
        return process_->wait_for_stderr(needle, timeout);
    }
    const std::string &events_path() const { return events_path_; }
    std::string events_text() const;

private:
    std::string dir_;
    std::string policy_path_;
    std::string events_path_;
    std::string state_dir_;
    bool own_state_dir_ = false;
    std::optional<ChildProcess> process_;
    bool started_ = false;
};

// How many of `events` are of type `type` (their "event" field).
size_t count_events(const std::vector<nlohmann::json> &events, const std::string &type);

// A fresh scratch directory under /tmp, removed by its destructor.
class ScratchDir {
public:
    ScratchDir();
    ~ScratchDir();
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

}  // namespace diskwatch::test
