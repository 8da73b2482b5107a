#include "metrics/agent_metrics.h"
#include "vocabulary/internal_errors.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "resolve/kernel_files.h"
#include "resolve/processes.h"

namespace diskwatch::metrics {

namespace {

constexpr const char *kPrefix = "ebpf_diskwatch_";

std::string metric(const char *suffix)
{
    return std::string(kPrefix) + suffix;
}

// The write rate that ranks cgroups decays with this half-life: a cgroup that
// stopped writing a few minutes ago yields its slot to one writing now.
constexpr double kRankHalfLifeS = 60;

// Boot time (Unix seconds) from /proc/stat's btime: a process's start time is
// counted in clock ticks since boot.
std::optional<double> boot_time_s()
{
    std::ifstream in("/proc/stat");
    std::string key;
    double value = 0;
    while (in >> key) {
        if (key == "btime" && (in >> value))
            return value;
        in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return std::nullopt;
}

std::optional<uint64_t> count_open_fds(const std::string &proc_pid_dir)
{
    std::error_code ec;
    uint64_t count = 0;
    for (std::filesystem::directory_iterator it(proc_pid_dir + "/fd", ec), end; !ec && it != end; it.increment(ec))
        ++count;
    return ec ? std::nullopt : std::optional<uint64_t>(count);
}

}  // namespace

std::optional<ProcessUsage> read_process_usage(const std::string &proc_pid_dir)
{
    const auto stat = read_process_stat(proc_pid_dir);
    if (!stat)
        return std::nullopt;
    // utime(14) stime(15) in clock ticks, starttime(22) in ticks since boot,
    // vsize(23) in bytes, rss(24) in pages, as proc(5) numbers them.
    const auto user_ticks = stat->number(14), system_ticks = stat->number(15), resident_pages = stat->number(24);
    if (!user_ticks || !system_ticks || !resident_pages)
        return std::nullopt;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    ProcessUsage usage;
    usage.cpu_seconds = static_cast<double>(*user_ticks + *system_ticks) / ticks;
    usage.resident_bytes = *resident_pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    usage.virtual_bytes = stat->number(23).value_or(0);
    if (const auto start_ticks = stat->number(22); start_ticks && ticks > 0)
        if (const auto boot = boot_time_s())
            usage.start_time_s = *boot + static_cast<double>(*start_ticks) / ticks;
    usage.open_fds = count_open_fds(proc_pid_dir);
    if (proc_pid_dir == "/proc/self") {
        struct rlimit limit {};
        if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
            usage.max_fds = limit.rlim_cur;
    }
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
        state.major_minor = mount.dev;
        state.device = mount.source.empty() ? mount.dev : mount.source;
        state.fstype = mount.fstype;
        state.written_bytes += mount.write_bytes;
        if (state.last_used && mount.used_bytes > *state.last_used)
            state.growth_bytes += mount.used_bytes - *state.last_used;
        state.last_used = mount.used_bytes;
        state.size = mount.size_bytes;
        state.used = mount.used_bytes;
        state.available = mount.available_bytes;
        // df's definition of full (its Use%): used over what a writer could
        // ever have, used + available to unprivileged writers. On ext4 the
        // reserved blocks make a non-root writer hit ENOSPC at used/size of
        // about 0.95; at this ratio it is 1.
        const uint64_t usable = mount.used_bytes + mount.available_bytes;
        state.used_ratio = usable > 0 ? static_cast<double>(mount.used_bytes) / static_cast<double>(usable) : 0;
        state.eta_full_s = mount.eta_full_s;
    }
    // Unmounted filesystems leave; their counters would never move again.
    for (auto it = mounts_.begin(); it != mounts_.end();)
        it = it->second.present ? std::next(it) : mounts_.erase(it);

    if (report.by == GroupBy::mount)
        return;
    rank_cgroups(report);
}

void AgentMetrics::rank_cgroups(const WriteReport &report)
{
    std::map<std::string, uint64_t> written_now;
    for (const auto &row : report.rows) {
        if (row.write_bytes == 0)
            continue;
        const std::string cgroup = row.cgroup.empty() ? "/" : row.cgroup;
        written_now[cgroup] += row.write_bytes;
        if (!row.container.empty())
            cgroup_containers_[cgroup] = {row.container,       row.container_name,  row.container_image,
                                          row.container_image_id, row.compose_project, row.compose_service};
    }
    // Decay every tracked cgroup's rate by the time since the last report,
    // then add this interval's: an exponentially weighted write rate.
    const double elapsed = last_rank_ts_ > 0 ? std::max(0.0, report.ts - last_rank_ts_) : 0;
    last_rank_ts_ = report.ts;
    const double keep = std::exp2(-elapsed / kRankHalfLifeS);
    // The span this report's bytes were written in: the first report has no
    // previous one, so its own interval.
    const double span = elapsed > 0 ? elapsed : report.interval_s > 0 ? report.interval_s : 1;
    const double weight = 1 - std::exp2(-span / kRankHalfLifeS);
    for (auto &[cgroup, state] : cgroups_)
        state.recent_bps *= keep;
    for (const auto &[cgroup, bytes] : written_now) {
        auto it = cgroups_.find(cgroup);
        if (it == cgroups_.end() && cgroups_.size() >= options_.cgroups_tracked) {
            // Full: forget the least active so that memory stays bounded; it
            // could not have been in the exported top N anyway.
            auto least = std::min_element(cgroups_.begin(), cgroups_.end(), [](const auto &a, const auto &b) {
                return a.second.recent_bps != b.second.recent_bps ? a.second.recent_bps < b.second.recent_bps
                                                                  : a.second.last_write_ts < b.second.last_write_ts;
            });
            cgroup_containers_.erase(least->first);
            cgroups_.erase(least);
            ++cgroups_forgotten_;
        }
        CgroupState &state = cgroups_[cgroup];
        state.written += bytes;
        state.last_write_ts = report.ts;
        state.recent_bps += weight * static_cast<double>(bytes) / span;
    }
    // Gone quiet for long (a removed cgroup, a finished container): forgotten,
    // so the dead never hold the exported slots. Its series ends; a cgroup
    // that writes again starts a new one from 0, which rate() reads as a reset.
    for (auto it = cgroups_.begin(); it != cgroups_.end();) {
        if (report.ts - it->second.last_write_ts > options_.cgroup_idle_forget_s) {
            cgroup_containers_.erase(it->first);
            it = cgroups_.erase(it);
            ++cgroups_forgotten_;
        } else {
            ++it;
        }
    }
}

void AgentMetrics::count_action(const std::string &rule, const std::string &action, bool dry_run)
{
    std::lock_guard lock(mutex_);
    ++actions_[{rule, action, dry_run}];
}

void AgentMetrics::declare_rules(const std::vector<RuleDeclaration> &rules, bool dry_run)
{
    std::lock_guard lock(mutex_);
    for (const auto &rule : rules) {
        // What a rule of this action can count: its own action; alert when
        // its subject is protected; a throttle's release, and its kill when
        // it escalates (escalate_after).
        std::vector<std::string> actions = {"alert"};
        if (rule.action == "throttle")
            actions.insert(actions.end(), {"throttle", "release", "kill"});
        else if (rule.action != "alert")
            actions.push_back(rule.action);
        for (const auto &action : actions)
            actions_.try_emplace({rule.name, action, dry_run}, 0);
    }
}

void AgentMetrics::record_reload(bool ok, double now_s)
{
    std::lock_guard lock(mutex_);
    last_reload_ok_ = ok;
    if (ok)
        last_reload_success_ts_ = now_s;
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
    MetricFamily ratio {metric("mount_used_ratio"),
                        "Used over used plus available to unprivileged writers (df's Use%), 0 to 1: 1 is full.",
                        T::gauge, {}};
    MetricFamily eta {metric("mount_eta_full_seconds"),
                      "Seconds until the filesystem is full at its current growth rate; absent when not filling.",
                      T::gauge, {}};
    for (const auto &[dev, state] : mounts_) {
        Labels labels {{"mountpoint", state.mountpoint},
                       {"device", state.device},
                       {"fstype", state.fstype},
                       {"major_minor", state.major_minor}};
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

    // Ranked by recent write rate, so a new runaway takes a slot at once
    // whatever others wrote before it; then by bytes, then by path.
    std::vector<std::pair<std::string, const CgroupState *>> ranked;
    for (const auto &[cgroup, state] : cgroups_)
        ranked.emplace_back(cgroup, &state);
    std::sort(ranked.begin(), ranked.end(), [](const auto &a, const auto &b) {
        if (a.second->recent_bps != b.second->recent_bps)
            return a.second->recent_bps > b.second->recent_bps;
        return a.second->written != b.second->written ? a.second->written > b.second->written : a.first < b.first;
    });
    std::vector<std::pair<std::string, uint64_t>> cgroups;
    cgroups.reserve(ranked.size());
    for (const auto &[cgroup, state] : ranked)
        cgroups.emplace_back(cgroup, state->written);
    const size_t exported = std::min(cgroups.size(), options_.cgroup_series);
    MetricFamily cgroup_family {metric("cgroup_written_bytes_total"),
                                "Bytes written by the processes of a cgroup (v2 path); only the top writers by "
                                "recent write rate are exported (--metrics-cgroups).",
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
        // The standard names every Prometheus client library exports, so the
        // agent joins the dashboards of every other exporter ...
        out.push_back({"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", T::counter,
                       {{{}, usage->cpu_seconds}}});
        out.push_back({"process_resident_memory_bytes", "Resident memory size in bytes.", T::gauge,
                       {{{}, static_cast<double>(usage->resident_bytes)}}});
        out.push_back({"process_virtual_memory_bytes", "Virtual memory size in bytes.", T::gauge,
                       {{{}, static_cast<double>(usage->virtual_bytes)}}});
        if (usage->start_time_s)
            out.push_back({"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                           T::gauge, {{{}, *usage->start_time_s}}});
        if (usage->open_fds)
            out.push_back({"process_open_fds", "Number of open file descriptors.", T::gauge,
                           {{{}, static_cast<double>(*usage->open_fds)}}});
        if (usage->max_fds)
            out.push_back({"process_max_fds", "Maximum number of open file descriptors.", T::gauge,
                           {{{}, static_cast<double>(*usage->max_fds)}}});
        // ... and the names of 0.1.0, kept for one release (CHANGELOG.md).
        out.push_back({metric("process_cpu_seconds_total"),
                       "Deprecated: process_cpu_seconds_total. CPU time (user and system) of the agent itself.",
                       T::counter, {{{}, usage->cpu_seconds}}});
        out.push_back({metric("process_resident_memory_bytes"),
                       "Deprecated: process_resident_memory_bytes. Resident memory of the agent itself.", T::gauge,
                       {{{}, static_cast<double>(usage->resident_bytes)}}});
    }
    if (last_reload_ok_) {
        out.push_back({metric("config_last_reload_successful"),
                       "Whether the last policy load (start or reload) succeeded; 0 while a broken policy is refused "
                       "and the previous one runs.",
                       T::gauge, {{{}, *last_reload_ok_ ? 1.0 : 0.0}}});
        out.push_back({metric("config_last_reload_success_timestamp_seconds"),
                       "Unix time of the last successful policy load.", T::gauge, {{{}, last_reload_success_ts_}}});
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
