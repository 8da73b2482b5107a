// `--metrics-listen`: the endpoint on 127.0.0.1 (ephemeral port) fetched with
// httplib's client and checked by the real `promtool check metrics`; the
// shipped alert rules checked and unit-tested with promtool (docs/metrics.md).
#include <catch2/catch.hpp>
#include <httplib.h>

#include <thread>

#include "ecosystem/ecosystem_support.h"
#include "metrics/agent_metrics.h"
#include "metrics/metrics_server.h"

using namespace diskwatch;
using namespace diskwatch::metrics;
using namespace diskwatch::test;
using namespace std::chrono_literals;

namespace {

std::string promtool()
{
    std::string path = find_tool("promtool");
    if (path.empty())
        FAIL("promtool is not installed (Debian package prometheus; scripts/install-deps.sh --test)");
    return path;
}

// Every family the agent exports, with label values that need escaping.
void feed(AgentMetrics &metrics)
{
    WriteReport report;
    report.ts = 1795628428.5;
    report.by = GroupBy::process;
    MountReport var_log;
    var_log.mount = "/var/log";
    var_log.dev = "8:1";
    var_log.fstype = "ext4";
    var_log.size_bytes = 10ull << 30;
    var_log.used_bytes = 9ull << 30;
    var_log.available_bytes = 1ull << 30;
    var_log.write_bytes = 50ull << 20;
    var_log.eta_full_s = 20.5;
    MountReport odd = var_log;
    odd.mount = "/mnt/we\"ird\\dir\nwith newline";
    odd.dev = "7:3";
    odd.eta_full_s.reset();
    report.mounts = {var_log, odd};
    ReportRow row;
    row.cgroup = "/system.slice/suricata.service";
    row.write_bytes = 50ull << 20;
    ReportRow quoted = row;
    quoted.cgroup = "/docker/\"quoted\"";
    report.rows = {row, quoted};
    report.drops.ringbuf_full = 3;
    metrics.observe_report(report);
    metrics.count_action("runaway-log-writer", "kill", false);
    metrics.count_action("runaway \"quoted\" rule", "alert", true);
    metrics.count_event("runaway");
    metrics.set_sink_source([] {
        SinkStats stats;
        stats.published = 10;
        stats.delivered = 9;
        stats.dropped = 1;
        return std::vector<std::pair<std::string, SinkStats>> {{"socket:/run/ebpf-diskwatch/events.sock", stats},
                                                                {"stdout", stats}};
    });
    metrics.set_program_source([] { return std::vector<ProgramStats> {{"dw_tp_btf_write", 1000, 2500000}}; });
}

}  // namespace

TEST_CASE("GET /metrics serves the text format that promtool accepts", "[metrics][promtool]")
{
    AgentMetricsOptions options;
    options.version = "0.1.0";
    options.hooks = "tp_btf";
    AgentMetrics metrics(options);
    feed(metrics);
    std::string error;
    auto server = MetricsServer::start({"127.0.0.1", 0}, [&] { return metrics.render_text(); }, &error);
    INFO(error);
    REQUIRE(server);
    REQUIRE(server->port() > 0);

    httplib::Client client("127.0.0.1", server->port());
    client.set_connection_timeout(10, 0);
    client.set_read_timeout(10, 0);
    auto response = client.Get("/metrics");
    REQUIRE(response);
    CHECK(response->status == 200);
    CHECK(response->get_header_value("Content-Type") == kContentType);
    const std::string body = response->body;
    INFO(body);
    CHECK_THAT(body, Catch::Contains("# TYPE ebpf_diskwatch_mount_written_bytes_total counter"));
    CHECK_THAT(body, Catch::Contains(
                         "ebpf_diskwatch_mount_written_bytes_total{mountpoint=\"/var/log\",device=\"8:1\",fstype=\"ext4\",major_minor=\"8:1\"} 52428800"));
    CHECK_THAT(body, Catch::Contains("mountpoint=\"/mnt/we\\\"ird\\\\dir\\nwith newline\""));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_mount_eta_full_seconds{mountpoint=\"/var/log\",device=\"8:1\",fstype=\"ext4\",major_minor=\"8:1\"} 20.5"));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_cgroup_written_bytes_total{cgroup=\"/docker/\\\"quoted\\\"\"}"));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_actions_total{rule=\"runaway-log-writer\",action=\"kill\",dry_run=\"false\"} 1"));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_process_cpu_seconds_total "));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_bpf_program_run_time_seconds_total{program=\"dw_tp_btf_write\"} 0.0025"));
    CHECK(server->scrapes() == 1);

    std::string output;
    const int status = run_with_stdin({promtool(), "check", "metrics"}, body, &output);
    INFO("promtool check metrics said: " << output);
    CHECK(status == 0);
    CHECK(output.empty());  // no lint complaints either

    CHECK(client.Get("/elsewhere")->status == 404);
}

TEST_CASE("the metrics endpoint refuses a port in use, at start", "[metrics]")
{
    AgentMetrics metrics({});
    std::string error;
    auto first = MetricsServer::start({"127.0.0.1", 0}, [&] { return metrics.render_text(); }, &error);
    REQUIRE(first);
    auto second =
        MetricsServer::start({"127.0.0.1", first->port()}, [&] { return metrics.render_text(); }, &error);
    CHECK_FALSE(second);
    CHECK_THAT(error, Catch::Contains(std::to_string(first->port())));
}

TEST_CASE("scrapes while the agent updates the metrics see consistent text", "[metrics]")
{
    AgentMetrics metrics({});
    std::string error;
    auto server = MetricsServer::start({"127.0.0.1", 0}, [&] { return metrics.render_text(); }, &error);
    REQUIRE(server);
    std::atomic<bool> stop {false};
    std::thread agent([&] {
        while (!stop) {
            feed(metrics);
            std::this_thread::sleep_for(1ms);
        }
    });
    httplib::Client client("127.0.0.1", server->port());
    for (int i = 0; i < 20; ++i) {
        auto response = client.Get("/metrics");
        REQUIRE(response);
        REQUIRE(response->status == 200);
        CHECK_THAT(response->body, Catch::EndsWith("\n"));
    }
    stop = true;
    agent.join();
}

TEST_CASE("the shipped alert rules pass promtool check rules and their unit tests", "[metrics][promtool]")
{
    std::string output;
    int status = run_with_stdin({promtool(), "check", "rules", DW_SOURCE_DIR "/deploy/prometheus/alerts.yml"}, "",
                                &output);
    INFO(output);
    CHECK(status == 0);
    CHECK_THAT(output, Catch::Contains("SUCCESS"));
    status = run_with_stdin({promtool(), "test", "rules", DW_SOURCE_DIR "/deploy/prometheus/alerts_test.yml"}, "",
                            &output);
    INFO(output);
    CHECK(status == 0);
}
