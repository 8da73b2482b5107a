// The agent's outside world as one bundle (userspace/ecosystem): the sinks,
// /metrics and the control socket started from the agent's options, driven
// the way the agent drives them, and the real CLI (`status`, `release`)
// talking to it (docs/control.md, docs/integrations.md).
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <cstring>
#include <string>
#include <vector>

#include "ecosystem/ecosystem.h"
#include "ecosystem/ecosystem_support.h"
#include "sinks/socket_sink.h"
#include "support/spawn.h"

using namespace diskwatch;
using namespace diskwatch::test;
using namespace std::chrono_literals;

namespace {

const std::string kKill =
    R"({"ts":"2026-11-25T17:40:28.123Z","event":"action","host":"h","action":"kill","rule":"runaway-log-writer","dry_run":false,"mechanism":"pidfd","process":{"pid":42,"comm":"suricata"}})";

EcosystemCallbacks agent_callbacks(std::string *released)
{
    EcosystemCallbacks callbacks;
    callbacks.status = [] {
        return nlohmann::json {{"policy", "/etc/ebpf-diskwatch/policy.yaml"},
                               {"hooks", "tp_btf"},
                               {"offenders", {{{"rule", "runaway-log-writer"}, {"pid", 42}, {"action", "throttle"}}}}};
    };
    callbacks.release = [released](const std::string &target, double, std::string *error) {
        if (target != "42") {
            *error = "nothing throttled or frozen matches " + target;
            return false;
        }
        *released = target;
        return true;
    };
    callbacks.snapshot = [](GroupBy by) { return nlohmann::json {{"by", std::string(to_string(by))}}; };
    callbacks.program_stats = [] { return std::vector<ProgramStats> {{"dw_tp_btf_write", 7, 7000}}; };
    return callbacks;
}

}  // namespace

TEST_CASE("the ecosystem bundle opens the sinks, serves metrics and answers the CLI", "[ecosystem][control][metrics]")
{
    if (!root_tests_can_run())
        return;
    TempDir dir("dw-bundle-");
    // A datagram socket standing in for the syslog daemon.
    UniqueFd syslog_receiver(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, dir.file("syslog.sock").c_str());
    REQUIRE(::bind(syslog_receiver.get(), reinterpret_cast<sockaddr *>(&address), sizeof(address)) == 0);

    EcosystemOptions options;
    options.json_socket = dir.file("events.sock");
    options.syslog = "unix:" + dir.file("syslog.sock");
    options.metrics_listen = "127.0.0.1:0";
    options.control_socket = dir.file("control.sock");
    std::string released, error;
    auto ecosystem = Ecosystem::start(options, "0.1.0", "tp_btf", agent_callbacks(&released), &error);
    INFO(error);
    REQUIRE(ecosystem);
    REQUIRE(ecosystem->metrics_port() > 0);

    // As the agent does: it owns the sinks and publishes each event to all.
    auto sinks = ecosystem->take_sinks();
    REQUIRE(sinks.size() == 3);  // socket, syslog, metrics
    UniqueFd subscriber = connect_unix_stream(options.json_socket, false, &error);
    REQUIRE(subscriber);
    auto *socket_sink = dynamic_cast<SocketSink *>(sinks[0].get());
    REQUIRE(socket_sink);
    REQUIRE(wait_until([&] { return socket_sink->peers().size() == 1; }, 10s));
    for (auto &sink : sinks)
        sink->publish(Event::from_line(kKill));
    char line[4096] = {};
    REQUIRE(::recv(subscriber.get(), line, sizeof(line) - 1, 0) > 0);
    CHECK(std::string(line) == kKill + "\n");
    char datagram[4096] = {};
    REQUIRE(::recv(syslog_receiver.get(), datagram, sizeof(datagram) - 1, 0) > 0);
    CHECK_THAT(std::string(datagram), Catch::StartsWith("<28>1 2026-11-25T17:40:28.123Z h ebpf-diskwatch "));

    WriteReport report;
    MountReport mount;
    mount.mount = "/var/log";
    mount.dev = "8:1";
    mount.fstype = "ext4";
    mount.write_bytes = 1000;
    report.mounts = {mount};
    ecosystem->observe_report(report);

    httplib::Client client("127.0.0.1", ecosystem->metrics_port());
    auto response = client.Get("/metrics");
    REQUIRE(response);
    const std::string &body = response->body;
    INFO(body);
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_actions_total{rule=\"runaway-log-writer\",action=\"kill\",dry_run=\"false\"} 1"));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_events_total{event=\"action\"} 1"));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_sink_events_published_total{sink=\"socket:" + options.json_socket + "\"} 1"));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_sink_events_delivered_total{sink=\"syslog:" + dir.file("syslog.sock") + "\"} 1"));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_mount_written_bytes_total{mountpoint=\"/var/log\",device=\"8:1\",fstype=\"ext4\",major_minor=\"8:1\"} 1000"));
    CHECK_THAT(body, Catch::Contains("ebpf_diskwatch_bpf_program_runs_total{program=\"dw_tp_btf_write\"} 7"));

    // The real CLI against the control socket.
    auto status = ChildProcess::start({DW_BINARY, "status", "--control-socket", options.control_socket});
    REQUIRE(status.wait(30s) == 0);
    INFO(status.out() << status.err());
    CHECK_THAT(status.out(), Catch::Contains("policy: /etc/ebpf-diskwatch/policy.yaml"));
    CHECK_THAT(status.out(), Catch::Contains("rule=runaway-log-writer"));
    CHECK_THAT(status.out(), Catch::Contains("name=socket:" + options.json_socket));

    auto status_json = ChildProcess::start({DW_BINARY, "status", "--json", "--control-socket", options.control_socket});
    REQUIRE(status_json.wait(30s) == 0);
    auto parsed = nlohmann::json::parse(status_json.out());
    CHECK(parsed.at("ok") == true);
    CHECK(parsed.at("sinks").size() == 2);
    CHECK(parsed.at("metrics_port") == ecosystem->metrics_port());

    auto release = ChildProcess::start({DW_BINARY, "release", "42", "--control-socket", options.control_socket});
    REQUIRE(release.wait(30s) == 0);
    CHECK_THAT(release.out(), Catch::Contains("released 42"));
    CHECK(released == "42");
    auto refused = ChildProcess::start({DW_BINARY, "release", "7", "--control-socket", options.control_socket});
    CHECK(refused.wait(30s) == 1);
    CHECK_THAT(refused.err(), Catch::Contains("nothing throttled or frozen matches 7"));

    ecosystem->stop();
    auto gone = ChildProcess::start({DW_BINARY, "status", "--control-socket", options.control_socket});
    CHECK(gone.wait(30s) == 3);
    CHECK_THAT(gone.err(), Catch::Contains("no agent running"));
}

TEST_CASE("bad ecosystem options are refused at start, naming the option", "[ecosystem]")
{
    TempDir dir("dw-bundle-");
    std::string error;
    auto start = [&](EcosystemOptions options) {
        if (options.control_socket.empty())
            options.control_socket = dir.file("control.sock");
        return Ecosystem::start(options, "0", "tp_btf", {}, &error);
    };
    EcosystemOptions syslog;
    syslog.syslog = "tcp:1.2.3.4:514";
    CHECK_FALSE(start(syslog));
    CHECK_THAT(error, Catch::StartsWith("--syslog: "));
    EcosystemOptions metrics;
    metrics.metrics_listen = "localhost";
    CHECK_FALSE(start(metrics));
    CHECK_THAT(error, Catch::StartsWith("--metrics-listen: "));
    EcosystemOptions group;
    group.control_group = "no-such-group-here";
    CHECK_FALSE(start(group));
    CHECK_THAT(error, Catch::Contains("--control-group"));
    EcosystemOptions socket;
    socket.json_socket = dir.path();  // a directory
    CHECK_FALSE(start(socket));
    CHECK_THAT(error, Catch::StartsWith("--json-socket: "));
}

namespace {

// The answer to `request` on the socket at `path`, asked by a child that
// drops to uid/gid nobody with `group` as its one supplementary group. Only
// async-signal-safe calls after fork: the parent has threads.
std::string ask_as_nobody_in(const std::string &path, const std::string &request, gid_t group)
{
    int answer_pipe[2];
    REQUIRE(::pipe(answer_pipe) == 0);
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    const std::string line = request + "\n";
    const pid_t pid = ::fork();
    if (pid == 0) {
        gid_t groups[1] = {group};
        if (::setgroups(1, groups) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(2);
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0)
            ::_exit(3);
        if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) < 0)
            ::_exit(4);
        char buffer[1024];
        const ssize_t got = ::read(fd, buffer, sizeof(buffer));
        if (got > 0 && ::write(answer_pipe[1], buffer, static_cast<size_t>(got)) != got)
            ::_exit(5);
        ::_exit(0);
    }
    REQUIRE(pid > 0);
    ::close(answer_pipe[1]);
    std::string answer;
    char buffer[1024];
    for (ssize_t got; (got = ::read(answer_pipe[0], buffer, sizeof(buffer))) > 0;)
        answer.append(buffer, static_cast<size_t>(got));
    ::close(answer_pipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO("child exit " << WEXITSTATUS(status));
    CHECK(WIFEXITED(status));
    return answer;
}

}  // namespace

TEST_CASE("act: --control-group members may release, never throttle, kill or protect (those act on any uid's "
          "processes)",
          "[ecosystem][control][act]")
{
    if (!root_tests_can_run())
        return;
    TempDir dir("dw-act-");
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);  // nobody must reach the socket; its mode is the door
    EcosystemOptions options;
    options.control_socket = dir.file("control.sock");
    options.control_group = "nogroup";
    std::string released, error;
    EcosystemCallbacks callbacks = agent_callbacks(&released);
    std::vector<std::string> acted;
    callbacks.act = [&acted](const nlohmann::json &request, uint32_t uid, int32_t) {
        acted.push_back(request.at("action").get<std::string>() + " by " + std::to_string(uid));
        return nlohmann::json {{"done", "ok"}};
    };
    auto ecosystem = Ecosystem::start(options, "0.1.0", "tp_btf", callbacks, &error);
    INFO(error);
    REQUIRE(ecosystem);
    for (const char *action : {"kill", "throttle", "protect"}) {
        nlohmann::json request {{"cmd", "act"}, {"action", action}, {"target", "1"}, {"requested_by", "top"}};
        if (std::string(action) == "throttle")
            request["rate_bps"] = 1024;
        const std::string answer = ask_as_nobody_in(options.control_socket, request.dump(), 65534);
        INFO(answer);
        CHECK(answer.find("\"ok\":false") != std::string::npos);
        CHECK(answer.find(std::string("permission denied: ") + action + " needs root") != std::string::npos);
    }
    CHECK(acted.empty());
    const std::string released_answer = ask_as_nobody_in(
        options.control_socket, R"({"cmd":"act","action":"release","target":"42","requested_by":"top"})", 65534);
    INFO(released_answer);
    CHECK(released_answer.find("\"ok\":true") != std::string::npos);
    CHECK(acted == std::vector<std::string> {"release by 65534"});
    ecosystem->stop();
}
