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
    size_t cgroup_series = 20;       // --metrics-cgroups: cgroups exported (top by bytes written)
    size_t cgroups_tracked = 4096;   // remembered to rank them; beyond, the smallest is forgotten
    std::string version;             // build_info
    std::string hooks;               // build_info: the hook family attached
};

// The agent's own process: CPU seconds (user + system) and resident memory.
struct ProcessUsage {
    double cpu_seconds = 0;
    uint64_t resident_bytes = 0;
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

    using SinkSource = std::function<std::vector<std::pair<std::string, SinkStats>>()>;
    using ProgramSource = std::function<std::vector<ProgramStats>()>;
    void set_sink_source(SinkSource source);
    void set_program_source(ProgramSource source);
    // Where kernel.bpf_stats_enabled is read (run-time counters stay at 0 unless it is 1).
    void set_bpf_stats_path(std::string path);

    std::vector<MetricFamily> families() const;
    std::string render_text() const;

private:
    struct MountState {
        std::string mountpoint, device, fstype;
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
    std::map<std::string, uint64_t> cgroup_written_;
    // What the runtime calls the container of a ranked cgroup (cgroup_container_info):
    // at most one per entry of cgroup_written_, so bounded the same way.
    struct ContainerLabels {
        std::string id, name, image, image_id, compose_project, compose_service;
    };
    std::map<std::string, ContainerLabels> cgroup_containers_;
    uint64_t cgroups_forgotten_ = 0;
    std::map<std::tuple<std::string, std::string, bool>, uint64_t> actions_;
    std::map<std::string, uint64_t> events_;
    DropCounters drops_;
    double last_refresh_ts_ = 0;
    SinkSource sink_source_;
    ProgramSource program_source_;
    std::string bpf_stats_path_ = "/proc/sys/kernel/bpf_stats_enabled";
};

}  // namespace diskwatch::metrics
