// /metrics fed by the real BPF programs: a known write on a loop-mounted ext4
// shows up in the mount's written-bytes counter, the attached programs in the
// per-program series, and promtool accepts the whole page (docs/metrics.md).
#include <catch2/catch.hpp>
#include <httplib.h>

#include <regex>
#include <thread>

#include "ecosystem/ecosystem_support.h"
#include "kernel/hooks.h"
#include "metrics/agent_metrics.h"
#include "metrics/metrics_server.h"
#include "monitor/write_monitor.h"
#include "support/scratch.h"
#include "support/top_run.h"

using namespace diskwatch;
using namespace diskwatch::metrics;
using namespace diskwatch::test;

TEST_CASE("a live monitor's metrics count a known write on its mount and pass promtool", "[metrics][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    const std::string promtool = find_tool("promtool");
    if (promtool.empty())
        FAIL("promtool is not installed (Debian package prometheus; scripts/install-deps.sh --test)");
    LoopMount disk(128);
    const auto features = probe_kernel_features();
    const auto choice = choose_hook_family(features, std::nullopt);
    REQUIRE(choice.family);
    std::string error;
    auto monitor = WriteMonitor::start(*choice.family, &error);
    INFO(error);
    REQUIRE(monitor);

    AgentMetricsOptions options;
    options.version = "test";
    options.hooks = std::string(to_string(*choice.family));
    AgentMetrics metrics(options);
    metrics.set_program_source([&] { return monitor->tracer().program_stats(); });
    auto server = MetricsServer::start({"127.0.0.1", 0}, [&] { return metrics.render_text(); }, &error);
    REQUIRE(server);

    monitor->refresh({});  // the baseline
    constexpr long long kBytes = 8ll << 20;
    auto writer = run_writer({"--mode", "write", "--file", disk.path() + "/log", "--bytes", std::to_string(kBytes),
                              "--comm", "metrics-writer"});
    REQUIRE(writer.written == kBytes);
    monitor->pump_events(100);
    metrics.observe_report(monitor->refresh({}));

    httplib::Client client("127.0.0.1", server->port());
    auto response = client.Get("/metrics");
    REQUIRE(response);
    REQUIRE(response->status == 200);
    const std::string &body = response->body;
    INFO(body);

    // device as node_exporter names it (the loop device), and the number beside it.
    const std::regex written("ebpf_diskwatch_mount_written_bytes_total\\{mountpoint=\"" + disk.path() +
                             "\",device=\"" + disk.device() + "\",fstype=\"ext4\",major_minor=\"" +
                             disk.dev_string() + "\"\\} (\\d+)");
    std::smatch match;
    REQUIRE(std::regex_search(body, match, written));
    const long long counted = std::stoll(match[1]);
    CHECK(std::llabs(counted - kBytes) <= kBytes / 100);
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_mount_size_bytes{mountpoint=\"" + disk.path() + "\""));
    // Every attached program ("name (section)") has its run-count series.
    REQUIRE_FALSE(monitor->tracer().attached_programs().empty());
    for (const auto &attached : monitor->tracer().attached_programs()) {
        const std::string program = attached.substr(0, attached.find(' '));
        CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_bpf_program_runs_total{program=\"" + program + "\"}"));
    }

    std::string output;
    const int status = run_with_stdin({promtool, "check", "metrics"}, body, &output);
    INFO(output);
    CHECK(status == 0);
}
