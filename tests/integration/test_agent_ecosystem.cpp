// The real agent with its outside world switched on (docs/integrations.md,
// docs/control.md, docs/metrics.md): a runaway writer is throttled; a
// subscriber on --json-socket gets the action event; `ebpf-diskwatch status`
// shows the throttle and the sinks; `ebpf-diskwatch release PID` releases it;
// /metrics counts the action and passes promtool.
#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "ecosystem/ecosystem_support.h"
#include "support/agent_run.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr long long kMiB = 1 << 20;

std::optional<json> status_of(const AgentRun &agent)
{
    auto status = ChildProcess::start(
        {DW_BINARY, "status", "--json", "--control-socket", agent.state_dir() + "/control.sock"});
    if (status.wait(30s) != 0)
        return std::nullopt;
    return json::parse(status.out());
}

}  // namespace

TEST_CASE("the agent's socket, control socket and metrics follow a throttled writer", "[ecosystem][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    const std::string socat = find_tool("socat");
    const std::string promtool = find_tool("promtool");
    if (socat.empty() || promtool.empty())
        FAIL("socat and promtool are needed (scripts/install-deps.sh --test)");
    LoopMount disk(512);
    TempDir dir("dw-agent-eco-");
    const std::string events_socket = dir.file("events.sock");
    AgentRun agent(R"(interval: 250ms
rules:
  - name: slow-down
    match:
      comm: ["dw-eco-writer"]
      mount: [")" + disk.path() + R"("]
    when:
      write_rate: 10MiB/s
      for: 500ms
    action: throttle
    throttle_to: 2MiB/s
    throttle_for: 10m
)",
                   {"--json-socket", events_socket, "--metrics-listen", "127.0.0.1:0"});
    INFO(agent.stderr_text());
    REQUIRE(agent.started());

    // A subscriber on the event socket, connected before anything happens.
    auto subscriber = ChildProcess::start({socat, "-u", "UNIX-CONNECT:" + events_socket, "CREATE:" + dir.file("seen.ndjson")});
    REQUIRE(wait_until(
        [&] {
            auto status = status_of(agent);
            if (!status)
                return false;
            for (const auto &sink : status->at("sinks"))
                if (sink.at("name") == "socket:" + events_socket)
                    return sink.value("subscribers", 0) == 1;
            return false;
        },
        20s));

    // Before any action, the rule's series are there at 0 (so the first
    // action is an increase Prometheus sees), and the policy load is counted.
    {
        const auto before = status_of(agent);
        REQUIRE(before);
        httplib::Client client("127.0.0.1", before->at("metrics_port").get<int>());
        const auto page = client.Get("/metrics");
        REQUIRE(page);
        INFO(page->body);
        for (const char *action : {"throttle", "release", "alert", "kill"})
            CHECK_THAT(page->body, Catch::Contains(std::string("ebpf_diskwatch_actions_total{rule=\"slow-down\",action=\"") +
                                                   action + "\",dry_run=\"false\"} 0\n"));
        CHECK_THAT(page->body, Catch::Contains("ebpf_diskwatch_config_last_reload_successful 1\n"));
        CHECK_THAT(page->body, Catch::Contains("\nprocess_cpu_seconds_total "));
    }

    auto writer = start_writer(disk.path() + "/log", 400 * kMiB, "dw-eco-writer",
                               {"--rate", std::to_string(40 * kMiB)});
    auto throttle = agent.wait_for(
        [&](const json &e) {
            return e.value("event", "") == "action" && e.value("action", "") == "throttle" &&
                   e["process"].value("pid", 0) == writer.pid();
        },
        20s);
    INFO(agent.events_text());
    REQUIRE(throttle);

    // status: the throttle is there, and the sinks with their counts.
    auto status = status_of(agent);
    REQUIRE(status);
    INFO(status->dump());
    CHECK(status->at("ok") == true);
    CHECK(status->at("hooks").is_string());
    bool listed = false;
    for (const auto &action : status->at("actions"))
        listed |= action.at("target") == "process:" + std::to_string(writer.pid()) && action.at("action") == "throttle";
    CHECK(listed);
    CHECK(status->at("offenders").size() >= 1);
    CHECK(status->at("sinks").size() == 2);  // the socket and --json-out

    // /metrics: the action is counted; promtool accepts the page.
    const int port = status->at("metrics_port");
    httplib::Client client("127.0.0.1", port);
    auto response = client.Get("/metrics");
    REQUIRE(response);
    INFO(response->body);
    CHECK_THAT(response->body,
               Catch::Contains("ebpf_diskwatch_actions_total{rule=\"slow-down\",action=\"throttle\",dry_run=\"false\"}"));
    CHECK_THAT(response->body, Catch::Contains("ebpf_diskwatch_mount_written_bytes_total{mountpoint=\"" + disk.path()));
    std::string output;
    CHECK(run_with_stdin({promtool, "check", "metrics"}, response->body, &output) == 0);
    INFO(output);

    // release PID through the CLI: the agent releases it (a release action event).
    auto release = ChildProcess::start({DW_BINARY, "release", std::to_string(writer.pid()), "--control-socket",
                                        agent.state_dir() + "/control.sock"});
    REQUIRE(release.wait(30s) == 0);
    INFO(release.err());
    CHECK_THAT(release.out(), Catch::Contains("released " + std::to_string(writer.pid())));
    auto released = agent.wait_for(
        [&](const json &e) {
            return e.value("event", "") == "action" && e.value("action", "") == "release" &&
                   e["process"].value("pid", 0) == writer.pid();
        },
        10s);
    CHECK(released);

    writer.signal(SIGKILL);
    writer.wait(10s);
    REQUIRE(agent.stop() == 0);
    // The agent's exit closed the socket: the subscriber has every event since it connected.
    REQUIRE(subscriber.wait(10s) == 0);
    std::istringstream seen(read_file(dir.file("seen.ndjson")));
    std::string line;
    bool saw_throttle = false, saw_stop = false;
    while (std::getline(seen, line)) {
        auto event = json::parse(line);
        saw_throttle |= event.value("event", "") == "action" && event.value("action", "") == "throttle";
        saw_stop |= event.value("event", "") == "agent.stop";
    }
    CHECK(saw_throttle);
    CHECK(saw_stop);
}
