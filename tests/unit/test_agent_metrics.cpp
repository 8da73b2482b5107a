// What /metrics says about a sequence of reports (docs/metrics.md).
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "metrics/agent_metrics.h"
#include "metrics/metrics_sink.h"

using namespace diskwatch;
using namespace diskwatch::metrics;

namespace {

MountReport mount(const std::string &path, const std::string &dev, uint64_t written, uint64_t used,
                  std::optional<double> eta = std::nullopt)
{
    MountReport report;
    report.mount = path;
    report.dev = dev;
    report.fstype = "ext4";
    report.size_bytes = 1000;
    report.used_bytes = used;
    report.available_bytes = 1000 - used;
    report.write_bytes = written;
    report.eta_full_s = eta;
    return report;
}

ReportRow row(const std::string &cgroup, uint64_t written)
{
    ReportRow report_row;
    report_row.cgroup = cgroup;
    report_row.write_bytes = written;
    return report_row;
}

const Sample *find_sample(const std::vector<MetricFamily> &families, const std::string &name,
                          const Labels &subset = {})
{
    for (const auto &family : families) {
        if (family.name != name)
            continue;
        for (const auto &sample : family.samples) {
            bool match = true;
            for (const auto &label : subset)
                match = match && std::find(sample.labels.begin(), sample.labels.end(), label) != sample.labels.end();
            if (match)
                return &sample;
        }
    }
    return nullptr;
}

}  // namespace

TEST_CASE("mount counters add each interval and only grow, fill gauges follow the latest report", "[metrics]")
{
    AgentMetrics metrics({});
    WriteReport first;
    first.mounts = {mount("/var/log", "8:1", 100, 400, 3600.0)};
    metrics.observe_report(first);
    WriteReport second;
    second.mounts = {mount("/var/log", "8:1", 50, 350)};  // space freed: growth does not go down
    metrics.observe_report(second);
    WriteReport third;
    third.mounts = {mount("/var/log", "8:1", 25, 500)};
    metrics.observe_report(third);

    auto families = metrics.families();
    const Labels var_log {{"mountpoint", "/var/log"}, {"device", "8:1"}, {"fstype", "ext4"}};
    REQUIRE(find_sample(families, "ebpf_diskwatch_mount_written_bytes_total", var_log));
    CHECK(find_sample(families, "ebpf_diskwatch_mount_written_bytes_total", var_log)->value == 175);
    CHECK(find_sample(families, "ebpf_diskwatch_mount_growth_bytes_total", var_log)->value == 150);
    CHECK(find_sample(families, "ebpf_diskwatch_mount_used_bytes", var_log)->value == 500);
    CHECK(find_sample(families, "ebpf_diskwatch_mount_available_bytes", var_log)->value == 500);
    CHECK(find_sample(families, "ebpf_diskwatch_mount_size_bytes", var_log)->value == 1000);
    CHECK(find_sample(families, "ebpf_diskwatch_mount_used_ratio", var_log)->value == Approx(0.5));
    // Not filling in the latest report: no ETA sample at all.
    CHECK(find_sample(families, "ebpf_diskwatch_mount_eta_full_seconds") == nullptr);
}

TEST_CASE("a mount that leaves the report leaves the metrics", "[metrics]")
{
    AgentMetrics metrics({});
    WriteReport first;
    first.mounts = {mount("/a", "7:0", 1, 1), mount("/b", "7:1", 1, 1)};
    metrics.observe_report(first);
    WriteReport second;
    second.mounts = {mount("/b", "7:1", 1, 1)};
    metrics.observe_report(second);
    auto families = metrics.families();
    CHECK(find_sample(families, "ebpf_diskwatch_mount_size_bytes", {{"mountpoint", "/a"}}) == nullptr);
    CHECK(find_sample(families, "ebpf_diskwatch_mount_size_bytes", {{"mountpoint", "/b"}}) != nullptr);
}

TEST_CASE("only the top N cgroups by bytes written are exported, the rest are counted", "[metrics]")
{
    AgentMetricsOptions options;
    options.cgroup_series = 2;
    options.cgroups_tracked = 3;
    AgentMetrics metrics(options);
    WriteReport report;
    report.by = GroupBy::process;
    report.rows = {row("/system.slice/suricata.service", 500), row("/system.slice/suricata.service", 300),
                   row("/user.slice", 100), row("/docker/abc", 200), row("", 0)};
    metrics.observe_report(report);
    auto families = metrics.families();
    CHECK(find_sample(families, "ebpf_diskwatch_cgroup_written_bytes_total",
                      {{"cgroup", "/system.slice/suricata.service"}})->value == 800);
    CHECK(find_sample(families, "ebpf_diskwatch_cgroup_written_bytes_total", {{"cgroup", "/docker/abc"}})->value ==
          200);
    CHECK(find_sample(families, "ebpf_diskwatch_cgroup_written_bytes_total", {{"cgroup", "/user.slice"}}) == nullptr);
    CHECK(find_sample(families, "ebpf_diskwatch_cgroups_unexported")->value == 1);

    // A fourth cgroup when three are tracked: the smallest is forgotten.
    WriteReport more;
    more.rows = {row("/new.slice", 50)};
    metrics.observe_report(more);
    families = metrics.families();
    CHECK(find_sample(families, "ebpf_diskwatch_cgroups_forgotten_total")->value == 1);
    CHECK(find_sample(families, "ebpf_diskwatch_cgroups_unexported")->value == 1);  // /new.slice

    // Rows grouped by mount say nothing per cgroup.
    WriteReport by_mount;
    by_mount.by = GroupBy::mount;
    by_mount.rows = {row("/docker/abc", 10000)};
    metrics.observe_report(by_mount);
    CHECK(find_sample(metrics.families(), "ebpf_diskwatch_cgroup_written_bytes_total", {{"cgroup", "/docker/abc"}})
              ->value == 200);
}

TEST_CASE("actions, events, drops, sinks and BPF programs are exported with their labels", "[metrics]")
{
    AgentMetricsOptions options;
    options.version = "0.1.0";
    options.hooks = "tp_btf";
    AgentMetrics metrics(options);
    metrics.count_action("runaway-log-writer", "kill", false);
    metrics.count_action("runaway-log-writer", "kill", false);
    metrics.count_action("runaway-log-writer", "throttle", true);
    metrics.count_event("runaway");
    WriteReport report;
    report.drops.ringbuf_full = 7;
    metrics.observe_report(report);
    metrics.set_sink_source([] {
        SinkStats stats;
        stats.published = 10;
        stats.delivered = 8;
        stats.dropped = 2;
        return std::vector<std::pair<std::string, SinkStats>> {{"socket:/run/x.sock", stats}};
    });
    metrics.set_program_source([] { return std::vector<ProgramStats> {{"dw_tp_btf_write", 42, 1500000000}}; });

    auto families = metrics.families();
    CHECK(find_sample(families, "ebpf_diskwatch_actions_total",
                      {{"rule", "runaway-log-writer"}, {"action", "kill"}, {"dry_run", "false"}})->value == 2);
    CHECK(find_sample(families, "ebpf_diskwatch_actions_total", {{"action", "throttle"}, {"dry_run", "true"}})
              ->value == 1);
    CHECK(find_sample(families, "ebpf_diskwatch_events_total", {{"event", "runaway"}})->value == 1);
    CHECK(find_sample(families, "ebpf_diskwatch_bpf_drops_total", {{"reason", "ringbuf_full"}})->value == 7);
    CHECK(find_sample(families, "ebpf_diskwatch_sink_events_dropped_total", {{"sink", "socket:/run/x.sock"}})
              ->value == 2);
    CHECK(find_sample(families, "ebpf_diskwatch_bpf_program_runs_total", {{"program", "dw_tp_btf_write"}})->value ==
          42);
    CHECK(find_sample(families, "ebpf_diskwatch_bpf_program_run_time_seconds_total")->value == Approx(1.5));
    CHECK(find_sample(families, "ebpf_diskwatch_build_info", {{"version", "0.1.0"}, {"hooks", "tp_btf"}})->value ==
          1);
    REQUIRE(find_sample(families, "ebpf_diskwatch_process_resident_memory_bytes"));
    CHECK(find_sample(families, "ebpf_diskwatch_process_resident_memory_bytes")->value > 0);
    CHECK_NOTHROW(metrics.render_text());
}

TEST_CASE("the agent's CPU and RSS come from /proc/PID/stat, whatever its comm", "[metrics]")
{
    auto dir = std::filesystem::temp_directory_path() / ("dw-proc-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(DW_FIXTURES_DIR "/proc-stat-odd-comm.txt", dir / "stat",
                               std::filesystem::copy_options::overwrite_existing);
    auto usage = read_process_usage(dir.string());
    std::filesystem::remove_all(dir);
    REQUIRE(usage);
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    CHECK(usage->cpu_seconds == Approx(400 / ticks));
    CHECK(usage->resident_bytes == 2560ull * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
    CHECK_FALSE(read_process_usage("/nonexistent"));
}

TEST_CASE("the metrics sink counts events and actions from the event stream itself", "[metrics]")
{
    AgentMetrics metrics({});
    MetricsSink sink(metrics);
    sink.publish(Event::from_line(R"({"ts":"2026-11-25T17:40:28Z","event":"runaway","host":"h","rule":"r1"})"));
    sink.publish(Event::from_line(R"({"ts":"2026-11-25T17:40:28Z","event":"action","host":"h","rule":"r1","action":"kill","dry_run":false,"mechanism":"pidfd"})"));
    sink.publish(Event::from_line(R"({"event":"action","rule":"r1","action":"throttle","dry_run":true})"));
    sink.publish(Event::from_line("not json"));
    auto families = metrics.families();
    CHECK(find_sample(families, "ebpf_diskwatch_events_total", {{"event", "runaway"}})->value == 1);
    CHECK(find_sample(families, "ebpf_diskwatch_events_total", {{"event", "action"}})->value == 2);
    CHECK(find_sample(families, "ebpf_diskwatch_actions_total",
                      {{"rule", "r1"}, {"action", "kill"}, {"dry_run", "false"}})->value == 1);
    CHECK(find_sample(families, "ebpf_diskwatch_actions_total",
                      {{"rule", "r1"}, {"action", "throttle"}, {"dry_run", "true"}})->value == 1);
    auto stats = sink.stats();
    CHECK(stats.published == 4);
    CHECK(stats.dropped == 1);
}

TEST_CASE("the metrics sink takes a release without a rule (after a restart) without throwing", "[metrics]")
{
    AgentMetrics metrics({});
    MetricsSink sink(metrics);
    CHECK_NOTHROW(sink.publish(Event::from_line(R"({"event":"action","action":"release","rule":null,"dry_run":null})")));
    CHECK(find_sample(metrics.families(), "ebpf_diskwatch_actions_total",
                      {{"rule", ""}, {"action", "release"}, {"dry_run", "false"}})->value == 1);
    CHECK_NOTHROW(sink.publish(Event::from_line(R"({"event":null})")));
    CHECK(sink.stats().dropped == 1);
    CHECK_NOTHROW(metrics.render_text());
}

TEST_CASE("an exported cgroup's container is named by cgroup_container_info, bounded by the same top N (docs/metrics.md)",
          "[metrics][containers]")
{
    AgentMetricsOptions options;
    options.cgroup_series = 1;
    AgentMetrics metrics(options);
    const std::string id(64, 'a');
    ReportRow web = row("/docker/" + id, 900);
    web.container = id;
    web.container_name = "shop-web-1";
    web.container_image = "nginx:1.27";
    web.compose_project = "shop";
    web.compose_service = "web";
    ReportRow db = row("/docker/" + std::string(64, 'b'), 100);
    db.container = std::string(64, 'b');
    db.container_name = "shop-db-1";
    WriteReport report;
    report.rows = {web, db, row("/user.slice", 50)};
    metrics.observe_report(report);
    const auto families = metrics.families();
    const Sample *info = find_sample(families, "ebpf_diskwatch_cgroup_container_info", {{"cgroup", "/docker/" + id}});
    REQUIRE(info);
    CHECK(info->value == 1);
    for (const auto &label : Labels{{"container_id", id},
                                     {"container", "shop-web-1"},
                                     {"image", "nginx:1.27"},
                                     {"compose_project", "shop"},
                                     {"compose_service", "web"}})
        CHECK(std::find(info->labels.begin(), info->labels.end(), label) != info->labels.end());
    // shop-db-1's cgroup is outside the top 1: no info series for it either.
    CHECK(find_sample(families, "ebpf_diskwatch_cgroup_container_info", {{"container", "shop-db-1"}}) == nullptr);
    // The byte counter keeps its one label: its series are what they were.
    CHECK(find_sample(families, "ebpf_diskwatch_cgroup_written_bytes_total", {{"cgroup", "/docker/" + id}})
              ->labels.size() == 1);
}

TEST_CASE("cgroups are ranked by recent write rate: a new runaway takes a slot from a big writer gone quiet, "
          "and the long quiet are forgotten",
          "[metrics]")
{
    AgentMetricsOptions options;
    options.cgroup_series = 1;
    AgentMetrics metrics(options);
    const auto report_at = [](double ts, std::vector<ReportRow> rows) {
        WriteReport report;
        report.ts = ts;
        report.interval_s = 1;
        report.by = GroupBy::process;
        report.rows = std::move(rows);
        return report;
    };
    // A container wrote 10 GiB in its first minute, then died.
    for (int second = 1; second <= 60; ++second)
        metrics.observe_report(report_at(second, {row("/docker/dead", 10ull << 30 >> 6)}));
    CHECK(find_sample(metrics.families(), "ebpf_diskwatch_cgroup_written_bytes_total", {{"cgroup", "/docker/dead"}}));
    // Ten minutes later a unit starts writing 10 MiB/s: within a minute it is
    // the one exported, though its total is a hundredth of the dead one's.
    for (int second = 660; second <= 720; ++second)
        metrics.observe_report(report_at(second, {row("/system.slice/suricata.service", 10 << 20)}));
    auto families = metrics.families();
    CHECK(find_sample(families, "ebpf_diskwatch_cgroup_written_bytes_total",
                      {{"cgroup", "/system.slice/suricata.service"}}));
    CHECK(find_sample(families, "ebpf_diskwatch_cgroup_written_bytes_total", {{"cgroup", "/docker/dead"}}) ==
          nullptr);
    CHECK(find_sample(families, "ebpf_diskwatch_cgroups_unexported")->value == 1);
    // Fifteen minutes without a write: the dead one is forgotten, not ranked forever.
    metrics.observe_report(report_at(961, {row("/system.slice/suricata.service", 10 << 20)}));
    families = metrics.families();
    CHECK(find_sample(families, "ebpf_diskwatch_cgroups_unexported")->value == 0);
    CHECK(find_sample(families, "ebpf_diskwatch_cgroups_forgotten_total")->value == 1);
}

TEST_CASE("mounts are labelled as node_exporter labels them, and full is df's full", "[metrics]")
{
    AgentMetrics metrics({});
    WriteReport report;
    MountReport root = mount("/", "254:1", 0, 500);
    root.source = "/dev/vda1";
    root.available_bytes = 300;  // 200 reserved for root, as ext4 keeps 5%
    report.mounts = {root};
    metrics.observe_report(report);
    const Labels labels {{"mountpoint", "/"}, {"device", "/dev/vda1"}, {"major_minor", "254:1"}, {"fstype", "ext4"}};
    const auto families = metrics.families();
    REQUIRE(find_sample(families, "ebpf_diskwatch_mount_used_ratio", labels));
    CHECK(find_sample(families, "ebpf_diskwatch_mount_used_ratio", labels)->value == Approx(500.0 / 800));
}

TEST_CASE("every rule's action series exist at 0 from the start, and reloads say whether they took", "[metrics]")
{
    AgentMetrics metrics({});
    MetricsSink sink(metrics);
    sink.publish(Event::from_line(R"({"event":"agent.start","rules":[{"name":"flood","scope":"process","action":"kill"},)"
                 R"({"name":"slow","scope":"cgroup","action":"throttle"},{"name":"look","scope":"process","action":"alert"}],)"
                 R"("dry_run":false})"));
    auto families = metrics.families();
    for (const auto &[rule, action] : std::vector<std::pair<std::string, std::string>> {
             {"flood", "kill"}, {"flood", "alert"}, {"slow", "throttle"}, {"slow", "release"}, {"slow", "kill"},
             {"look", "alert"}}) {
        INFO(rule << " " << action);
        const auto *sample = find_sample(families, "ebpf_diskwatch_actions_total",
                                         {{"rule", rule}, {"action", action}, {"dry_run", "false"}});
        REQUIRE(sample);
        CHECK(sample->value == 0);
    }
    CHECK(find_sample(families, "ebpf_diskwatch_actions_total", {{"rule", "look"}, {"action", "kill"}}) == nullptr);
    CHECK(find_sample(families, "ebpf_diskwatch_config_last_reload_successful")->value == 1);
    const double loaded_at = find_sample(families, "ebpf_diskwatch_config_last_reload_success_timestamp_seconds")->value;
    CHECK(loaded_at > 1.7e9);

    sink.publish(Event::from_line(R"({"event":"action","rule":"flood","action":"kill","dry_run":false})"));
    sink.publish(Event::from_line(R"({"event":"policy.reload","ok":false,"error":"p.yaml:3: rules: bad","rules":[],"dry_run":false})"));
    families = metrics.families();
    CHECK(find_sample(families, "ebpf_diskwatch_actions_total", {{"rule", "flood"}, {"action", "kill"}})->value == 1);
    CHECK(find_sample(families, "ebpf_diskwatch_config_last_reload_successful")->value == 0);
    CHECK(find_sample(families, "ebpf_diskwatch_config_last_reload_success_timestamp_seconds")->value == loaded_at);
}

TEST_CASE("the agent's own process metrics carry the standard process_* names", "[metrics]")
{
    AgentMetrics metrics({});
    const auto families = metrics.families();
    for (const char *name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                             "process_start_time_seconds", "process_open_fds", "process_max_fds"}) {
        INFO(name);
        REQUIRE(find_sample(families, name));
    }
    CHECK(find_sample(families, "process_open_fds")->value >= 3);
    CHECK(find_sample(families, "process_start_time_seconds")->value > 1.7e9);
    CHECK(find_sample(families, "process_resident_memory_bytes")->value > 0);
}
