// Everything `/metrics` exposes (docs/metrics.md), as one thread-safe object
// the agent feeds: each refresh's WriteReport, each action and event, and
// callbacks read at scrape time for the sinks' and BPF programs' counters.
// Cardinality is bounded: mounts are what the host has, cgroups are the top
// `cgroup_series` writers only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "aggregate/write_report.h"
#include "kernel/write_tracer.h"
#include "metrics/exposition.h"
#include "sinks/event_sink.h"

namespace diskwatch::metrics {

struct AgentMetricsOptions {
    size_t cgroup_series = 20;       // --metrics-cgroups: cgroups exported (top by recent write rate)
    size_t cgroups_tracked = 4096;   // remembered to rank them; beyond, the least active is forgotten
    double cgroup_idle_forget_s = 900;  // a cgroup that wrote nothing for this long is forgotten (dead ones go)
    std::string version;             // build_info
    std::string hooks;               // build_info: the hook family attached
};

// The agent's own process, as the Prometheus client libraries export it
// (process_* : CPU, memory, start time, file descriptors).
struct ProcessUsage {
    double cpu_seconds = 0;
    uint64_t resident_bytes = 0;
    uint64_t virtual_bytes = 0;
    std::optional<double> start_time_s;  // Unix time
    std::optional<uint64_t> open_fds, max_fds;
};
std::optional<ProcessUsage> read_process_usage(const std::string &proc_pid_dir = "/proc/self");

class AgentMetrics {
public:
    explicit AgentMetrics(AgentMetricsOptions options);

    // Each refresh. Mount counters add the report's interval bytes (so they
    // only ever grow); per-cgroup counters need rows grouped by process or
    // cgroup (a report grouped by mount carries no per-cgroup split).
    void observe_report(const WriteReport &report);
    void count_action(const std::string &rule, const std::string &action, bool dry_run);
    void count_event(const std::string &event);
    // The rules of the policy now running (agent.start, each successful
    // reload): each one's actions_total series exist from then on, at 0, so
    // the first action after a start is an increase (rate(), increase()) and
    // not the birth of a series at 1.
    struct RuleDeclaration {
        std::string name, action;  // action: the rule's (alert, throttle, kill)
    };
    void declare_rules(const std::vector<RuleDeclaration> &rules, bool dry_run);
    // Each policy load (docs/metrics.md: config_last_reload_*); `now_s` Unix time.
    void record_reload(bool ok, double now_s);

    using SinkSource = std::function<std::vector<std::pair<std::string, SinkStats>>()>;
    using ProgramSource = std::function<std::vector<ProgramStats>()>;
    void set_sink_source(SinkSource source);
    void set_program_source(ProgramSource source);
    // Where kernel.bpf_stats_enabled is read (run-time counters stay at 0 unless it is 1).
    void set_bpf_stats_path(std::string path);

    std::vector<MetricFamily> families() const;
    std::string render_text() const;

private:
    void rank_cgroups(const WriteReport &report);

    struct MountState {
        std::string mountpoint, device, major_minor, fstype;
        uint64_t written_bytes = 0;
        uint64_t growth_bytes = 0;
        std::optional<uint64_t> last_used;
        uint64_t size = 0, used = 0, available = 0;
        double used_ratio = 0;
        std::optional<double> eta_full_s;
        bool present = false;  // in the latest report
    };

    AgentMetricsOptions options_;
    mutable std::mutex mutex_;
    std::map<std::string, MountState> mounts_;  // by device "major:minor"
    struct CgroupState {
        uint64_t written = 0;       // since the agent started: the exported counter
        double recent_bps = 0;      // write rate, decaying (half-life a minute): the rank
        double last_write_ts = 0;   // report time of its last write
    };
    std::map<std::string, CgroupState> cgroups_;
    // What the runtime calls the container of a ranked cgroup (cgroup_container_info):
    // at most one per entry of cgroup_written_, so bounded the same way.
    struct ContainerLabels {
        std::string id, name, image, image_id, compose_project, compose_service;
    };
    std::map<std::string, ContainerLabels> cgroup_containers_;
    double last_rank_ts_ = 0;  // report time of the last decay of recent_bps
    uint64_t cgroups_forgotten_ = 0;
    std::map<std::tuple<std::string, std::string, bool>, uint64_t> actions_;
    std::map<std::string, uint64_t> events_;
    DropCounters drops_;
    double last_refresh_ts_ = 0;
    std::optional<bool> last_reload_ok_;
    double last_reload_success_ts_ = 0;
    SinkSource sink_source_;
    ProgramSource program_source_;
    std::string bpf_stats_path_ = "/proc/sys/kernel/bpf_stats_enabled";
};

}  // namespace diskwatch::metrics
