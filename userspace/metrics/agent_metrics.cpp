#include "metrics/agent_metrics.h"
#include "events/internal_errors.h"

#include <unistd.h>

#include <algorithm>

#include "resolve/kernel_files.h"
#include "resolve/processes.h"

namespace diskwatch::metrics {

namespace {

constexpr const char *kPrefix = "ebpf_diskwatch_";

std::string metric(const char *suffix)
{
    return std::string(kPrefix) + suffix;
}

}  // namespace

std::optional<ProcessUsage> read_process_usage(const std::string &proc_pid_dir)
{
    const auto stat = read_process_stat(proc_pid_dir);
    if (!stat)
        return std::nullopt;
    // utime(14) stime(15) in clock ticks, rss(24) in pages, as proc(5) numbers them.
    const auto user_ticks = stat->number(14), system_ticks = stat->number(15), resident_pages = stat->number(24);
    if (!user_ticks || !system_ticks || !resident_pages)
        return std::nullopt;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    ProcessUsage usage;
    usage.cpu_seconds = static_cast<double>(*user_ticks + *system_ticks) / ticks;
    usage.resident_bytes = *resident_pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    return usage;
}

AgentMetrics::AgentMetrics(AgentMetricsOptions options) : options_(std::move(options)) {}

void AgentMetrics::observe_report(const WriteReport &report)
{
    std::lock_guard lock(mutex_);
    last_refresh_ts_ = report.ts;
    drops_ = report.drops;
    for (auto &[dev, state] : mounts_)
        state.present = false;
    for (const auto &mount : report.mounts) {
        auto &state = mounts_[mount.dev];
        state.present = true;
        state.mountpoint = mount.mount;
        state.device = mount.dev;
        state.fstype = mount.fstype;
        state.written_bytes += mount.write_bytes;
        if (state.last_used && mount.used_bytes > *state.last_used)
            state.growth_bytes += mount.used_bytes - *state.last_used;
        state.last_used = mount.used_bytes;
        state.size = mount.size_bytes;
        state.used = mount.used_bytes;
        state.available = mount.available_bytes;
        state.used_ratio = mount.size_bytes > 0 ? static_cast<double>(mount.used_bytes) / mount.size_bytes : 0;
        state.eta_full_s = mount.eta_full_s;
    }
    // Unmounted filesystems leave; their counters would never move again.
    for (auto it = mounts_.begin(); it != mounts_.end();)
        it = it->second.present ? std::next(it) : mounts_.erase(it);

    if (report.by == GroupBy::mount)
        return;
    for (const auto &row : report.rows) {
        if (row.write_bytes == 0)
            continue;
        const std::string cgroup = row.cgroup.empty() ? "/" : row.cgroup;
        auto it = cgroup_written_.find(cgroup);
        if (it == cgroup_written_.end() && cgroup_written_.size() >= options_.cgroups_tracked) {
            // Full: forget the smallest so that memory stays bounded; it
            // could not have been in the exported top N anyway.
            auto smallest = std::min_element(cgroup_written_.begin(), cgroup_written_.end(),
                                             [](const auto &a, const auto &b) { return a.second < b.second; });
            cgroup_containers_.erase(smallest->first);
            cgroup_written_.erase(smallest);
            ++cgroups_forgotten_;
        }
        cgroup_written_[cgroup] += row.write_bytes;
        if (!row.container.empty())
            cgroup_containers_[cgroup] = {row.container,       row.container_name,  row.container_image,
                                          row.container_image_id, row.compose_project, row.compose_service};
    }
}

void AgentMetrics::count_action(const std::string &rule, const std::string &action, bool dry_run)
{
    std::lock_guard lock(mutex_);
    ++actions_[{rule, action, dry_run}];
}

void AgentMetrics::count_event(const std::string &event)
{
    std::lock_guard lock(mutex_);
    ++events_[event];
}

void AgentMetrics::set_sink_source(SinkSource source)
{
    std::lock_guard lock(mutex_);
    sink_source_ = std::move(source);
}

void AgentMetrics::set_program_source(ProgramSource source)
{
    std::lock_guard lock(mutex_);
    program_source_ = std::move(source);
}

void AgentMetrics::set_bpf_stats_path(std::string path)
{
    std::lock_guard lock(mutex_);
    bpf_stats_path_ = std::move(path);
}

std::vector<MetricFamily> AgentMetrics::families() const
{
    using T = MetricType;
    std::vector<MetricFamily> out;
    std::lock_guard lock(mutex_);

    out.push_back({metric("build_info"), "Version of ebpf-diskwatch and the BPF hook family attached; always 1.",
                   T::gauge, {{{{"version", options_.version}, {"hooks", options_.hooks}}, 1}}});
    out.push_back({metric("last_refresh_timestamp_seconds"),
                   "Unix time of the last refresh of the write counters.", T::gauge, {{{}, last_refresh_ts_}}});

    MetricFamily written {metric("mount_written_bytes_total"),
                          "Bytes written to files and block devices of this filesystem, as counted in the kernel.",
                          T::counter, {}};
    MetricFamily growth {metric("mount_growth_bytes_total"),
                         "Sum of the increases of the filesystem's used space between refreshes (statvfs).",
                         T::counter, {}};
    MetricFamily size {metric("mount_size_bytes"), "Size of the filesystem.", T::gauge, {}};
    MetricFamily used {metric("mount_used_bytes"), "Used space of the filesystem.", T::gauge, {}};
    MetricFamily available {metric("mount_available_bytes"), "Space available to unprivileged users.", T::gauge,
                            {}};
    MetricFamily ratio {metric("mount_used_ratio"), "Used space over size, 0 to 1.", T::gauge, {}};
    MetricFamily eta {metric("mount_eta_full_seconds"),
                      "Seconds until the filesystem is full at its current growth rate; absent when not filling.",
                      T::gauge, {}};
    for (const auto &[dev, state] : mounts_) {
        Labels labels {{"mountpoint", state.mountpoint}, {"device", state.device}, {"fstype", state.fstype}};
        written.samples.push_back({labels, static_cast<double>(state.written_bytes)});
        growth.samples.push_back({labels, static_cast<double>(state.growth_bytes)});
        size.samples.push_back({labels, static_cast<double>(state.size)});
        used.samples.push_back({labels, static_cast<double>(state.used)});
        available.samples.push_back({labels, static_cast<double>(state.available)});
        ratio.samples.push_back({labels, state.used_ratio});
        if (state.eta_full_s)
            eta.samples.push_back({labels, *state.eta_full_s});
    }
    for (auto *family : {&written, &growth, &size, &used, &available, &ratio, &eta})
        out.push_back(std::move(*family));

    std::vector<std::pair<std::string, uint64_t>> cgroups(cgroup_written_.begin(), cgroup_written_.end());
    std::sort(cgroups.begin(), cgroups.end(), [](const auto &a, const auto &b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    const size_t exported = std::min(cgroups.size(), options_.cgroup_series);
    MetricFamily cgroup_family {metric("cgroup_written_bytes_total"),
                                "Bytes written by the processes of a cgroup (v2 path); only the top writers "
                                "are exported (--metrics-cgroups).",
                                T::counter, {}};
    for (size_t i = 0; i < exported; ++i)
        cgroup_family.samples.push_back({{{"cgroup", cgroups[i].first}}, static_cast<double>(cgroups[i].second)});
    out.push_back(std::move(cgroup_family));
    // Container names as an info metric, not as labels of the byte counter:
    // its series keep their identity, and a query joins them on cgroup
    // (docs/metrics.md). Only for the exported cgroups: bounded by the same N.
    MetricFamily container_family {metric("cgroup_container_info"),
                                   "The container an exported cgroup runs, as its runtime names it (always 1).",
                                   T::gauge, {}};
    for (size_t i = 0; i < exported; ++i) {
        const auto it = cgroup_containers_.find(cgroups[i].first);
        if (it == cgroup_containers_.end())
            continue;
        const ContainerLabels &c = it->second;
        container_family.samples.push_back({{{"cgroup", cgroups[i].first},
                                             {"container_id", c.id},
                                             {"container", c.name},
                                             {"image", c.image},
                                             {"image_id", c.image_id},
                                             {"compose_project", c.compose_project},
                                             {"compose_service", c.compose_service}},
                                            1.0});
    }
    out.push_back(std::move(container_family));
    out.push_back({metric("cgroups_unexported"),
                   "Cgroups that wrote but are outside the exported top N (bounded cardinality).", T::gauge,
                   {{{}, static_cast<double>(cgroups.size() - exported)}}});
    out.push_back({metric("cgroups_forgotten_total"),
                   "Cgroups dropped from the ranking because more than the tracked maximum wrote.", T::counter,
                   {{{}, static_cast<double>(cgroups_forgotten_)}}});

    MetricFamily actions {metric("actions_total"),
                          "Actions taken on runaway writers, by policy rule and action (alert, throttle, release, "
                          "kill); dry_run=\"true\" ones were only reported.",
                          T::counter, {}};
    for (const auto &[key, count] : actions_) {
        const auto &[rule, action, dry_run] = key;
        actions.samples.push_back(
            {{{"rule", rule}, {"action", action}, {"dry_run", dry_run ? "true" : "false"}}, static_cast<double>(count)});
    }
    out.push_back(std::move(actions));
    MetricFamily events {metric("events_total"), "Events emitted, by event type (docs/events.md).", T::counter, {}};
    for (const auto &[event, count] : events_)
        events.samples.push_back({{{"event", event}}, static_cast<double>(count)});
    out.push_back(std::move(events));

    MetricFamily internal {metric("internal_errors_total"),
                           "Exceptions a thread of the agent caught at its boundary and survived, by thread "
                           "(each also an agent.warning event, at most one per thread every 10 s).",
                           T::counter, {}};
    for (const auto &[thread, count] : InternalErrors::instance().counts())
        internal.samples.push_back({{{"thread", thread}}, static_cast<double>(count)});
    out.push_back(std::move(internal));

    MetricFamily drops {metric("bpf_drops_total"),
                        "Records the BPF side could not count, by reason (map full, ring buffer full, file lookup).",
                        T::counter, {}};
    for (const auto &reason : kDropReasons)  // every reason, in the table's order (vocabulary/drop_reasons.h)
        drops.samples.push_back({{{"reason", std::string(reason.name)}}, static_cast<double>(drops_.*reason.counter)});
    out.push_back(std::move(drops));

    if (sink_source_) {
        MetricFamily published {metric("sink_events_published_total"), "Events handed to an event sink.",
                                T::counter, {}};
        MetricFamily delivered {metric("sink_events_delivered_total"),
                                "Events an event sink wrote out (per subscriber for the socket sink).", T::counter,
                                {}};
        MetricFamily dropped {metric("sink_events_dropped_total"),
                              "Events an event sink lost: queue full, slow subscriber, write error, disk full.",
                              T::counter, {}};
        for (const auto &[name, stats] : sink_source_()) {
            Labels labels {{"sink", name}};
            published.samples.push_back({labels, static_cast<double>(stats.published)});
            delivered.samples.push_back({labels, static_cast<double>(stats.delivered)});
            dropped.samples.push_back({labels, static_cast<double>(stats.dropped)});
        }
        out.push_back(std::move(published));
        out.push_back(std::move(delivered));
        out.push_back(std::move(dropped));
    }

    if (auto usage = read_process_usage()) {
        out.push_back({metric("process_cpu_seconds_total"), "CPU time (user and system) of the agent itself.",
                       T::counter, {{{}, usage->cpu_seconds}}});
        out.push_back({metric("process_resident_memory_bytes"), "Resident memory of the agent itself.", T::gauge,
                       {{{}, static_cast<double>(usage->resident_bytes)}}});
    }

    if (program_source_) {
        MetricFamily run_time {metric("bpf_program_run_time_seconds_total"),
                               "Time spent in a BPF program (needs kernel.bpf_stats_enabled=1).", T::counter, {}};
        MetricFamily runs {metric("bpf_program_runs_total"),
                           "Runs of a BPF program (needs kernel.bpf_stats_enabled=1).", T::counter, {}};
        for (const auto &program : program_source_()) {
            Labels labels {{"program", program.name}};
            run_time.samples.push_back({labels, static_cast<double>(program.run_time_ns) / 1e9});
            runs.samples.push_back({labels, static_cast<double>(program.run_count)});
        }
        out.push_back(std::move(run_time));
        out.push_back(std::move(runs));
    }
    if (const auto enabled = read_integer_file(bpf_stats_path_))
        out.push_back({metric("bpf_stats_enabled"),
                       "1 when kernel.bpf_stats_enabled is on, so that BPF run time is being measured.", T::gauge,
                       {{{}, *enabled != 0 ? 1.0 : 0.0}}});
    return out;
}

std::string AgentMetrics::render_text() const
{
    return render(families());
}

}  // namespace diskwatch::metrics
