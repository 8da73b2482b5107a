// The syslog sink against a real rsyslogd, started by the test on a private
// unix socket and UDP port with a private config and work directory: it must
// parse our RFC 5424 header, our structured data (mmpstrucdata) and the JSON
// message (mmjsonparse). docs/integrations.md shows the same configuration.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>
#include <thread>

#include "ecosystem/ecosystem_support.h"
#include "sinks/syslog_sink.h"
#include "support/spawn.h"

using namespace diskwatch;
using namespace diskwatch::test;
using namespace std::chrono_literals;

namespace {

const std::string kKill =
    R"({"ts":"2026-11-25T17:40:28.123456Z","event":"action","host":"vm-test","action":"kill","rule":"runaway-log-writer","dry_run":false,"mechanism":"pidfd","process":{"pid":4242,"comm":"suricata","exe":"/usr/bin/suricata"},"mount":{"path":"/var/log","used_pct":91.5}})";

// One output line per message: the fields rsyslog parsed, as JSON.
std::string rsyslog_config(const TempDir &dir, int udp_port)
{
    std::ostringstream config;
    config << "global(workDirectory=\"" << dir.file("work") << "\")\n"
           << "module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
           << "module(load=\"imudp\")\n"
           << "module(load=\"mmpstrucdata\")\n"
           << "module(load=\"mmjsonparse\")\n"
           << "input(type=\"imuxsock\" Socket=\"" << dir.file("log.sock")
           << "\" UseSpecialParser=\"off\" ParseHostname=\"on\" IgnoreTimestamp=\"off\")\n"
           << "input(type=\"imudp\" Address=\"127.0.0.1\" Port=\"" << udp_port << "\")\n"
           << R"(template(name="parsed" type="list" option.jsonf="on") {
  property(outname="pri" name="pri" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd_pid" name="$!rfc5424-sd!diskwatch@32473!process.pid" format="jsonf")
  property(outname="sd_rule" name="$!rfc5424-sd!diskwatch@32473!rule" format="jsonf")
  property(outname="json_comm" name="$!process!comm" format="jsonf")
  property(outname="json_used_pct" name="$!mount!used_pct" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
action(type="mmpstrucdata")
action(type="mmjsonparse" cookie="")
)"
           << "action(type=\"omfile\" file=\"" << dir.file("out.log") << "\" template=\"parsed\")\n";
    return config.str();
}

std::vector<nlohmann::json> parsed_lines(const std::string &path)
{
    std::vector<nlohmann::json> lines;
    std::istringstream text(read_file(path));
    std::string line;
    while (std::getline(text, line))
        if (!line.empty())
            lines.push_back(nlohmann::json::parse(line));
    return lines;
}

// The shipped drop-in (deploy/rsyslog/ebpf-diskwatch.conf) with the port and
// files moved into the test's directory.
std::string shipped_config(const TempDir &dir, int udp_port)
{
    std::string config = read_file(DW_SOURCE_DIR "/deploy/rsyslog/ebpf-diskwatch.conf");
    auto replace = [&](const std::string &from, const std::string &to) {
        size_t at = config.find(from);
        REQUIRE(at != std::string::npos);
        config.replace(at, from.size(), to);
    };
    replace("port=\"5514\"", "port=\"" + std::to_string(udp_port) + "\"");
    replace("/var/log/ebpf-diskwatch/events.log", dir.file("out.log"));
    replace("/var/log/syslog", dir.file("syslog"));
    return "global(workDirectory=\"" + dir.file("work") + "\")\n" + config;
}

class Rsyslogd {
public:
    Rsyslogd(const TempDir &dir, int udp_port) : Rsyslogd(dir, rsyslog_config(dir, udp_port)) {}
    Rsyslogd(const TempDir &dir, const std::string &config)
    {
        std::filesystem::create_directories(dir.file("work"));
        write_file(dir.file("rsyslog.conf"), config);
        const std::string binary = find_tool("rsyslogd");
        if (binary.empty())
            FAIL("rsyslogd is not installed (Debian package rsyslog; scripts/install-deps.sh --test)");
        process_.emplace(ChildProcess::start(
            {binary, "-n", "-f", dir.file("rsyslog.conf"), "-i", dir.file("rsyslogd.pid")}));
    }
    ~Rsyslogd()
    {
        process_->signal(SIGTERM);
        process_->wait(10s);  // killed by ChildProcess if it hangs
    }
    ChildProcess &process() { return *process_; }

private:
    std::optional<ChildProcess> process_;
};

}  // namespace

TEST_CASE("rsyslogd receives events over its unix socket and parses header, structured data and JSON",
          "[sinks][syslog][rsyslog]")
{
    TempDir dir("dw-rsyslog-");
    Rsyslogd rsyslogd(dir, free_udp_port());
    INFO(rsyslogd.process().err());
    REQUIRE(wait_until([&] { return ::access(dir.file("log.sock").c_str(), F_OK) == 0; }, 20s));

    std::string error;
    auto target = parse_syslog_target("unix:" + dir.file("log.sock"), &error);
    REQUIRE(target);
    auto sink = SyslogSink::open(*target, SyslogFormat {}, &error);
    INFO(error);
    REQUIRE(sink);
    sink->publish(Event::from_line(kKill));
    sink->publish(Event::from_line(R"({"ts":"2026-11-25T17:40:29Z","event":"agent.start","host":"vm-test"})"));
    REQUIRE(wait_until([&] { return parsed_lines(dir.file("out.log")).size() >= 2; }, 20s));

    auto lines = parsed_lines(dir.file("out.log"));
    const auto &kill = lines[0];
    INFO(kill.dump());
    CHECK(kill.at("pri") == "28");
    CHECK(kill.at("facility") == "daemon");
    CHECK(kill.at("severity") == "warning");
    CHECK(kill.at("hostname") == "vm-test");
    CHECK(kill.at("app") == "ebpf-diskwatch");
    CHECK(kill.at("procid") == std::to_string(::getpid()));
    CHECK(kill.at("msgid") == "action");
    CHECK_THAT(kill.at("timestamp").get<std::string>(), Catch::StartsWith("2026-11-25T17:40:28.123456"));
    CHECK(kill.at("sd_pid") == "4242");
    CHECK(kill.at("sd_rule") == "runaway-log-writer");
    CHECK(kill.at("json_comm") == "suricata");
    CHECK(kill.at("json_used_pct") == "91.5");
    CHECK(nlohmann::json::parse(kill.at("msg").get<std::string>()) == nlohmann::json::parse(kKill));
    CHECK(lines[1].at("msgid") == "agent.start");
    CHECK(lines[1].at("severity") == "info");

    auto stats = sink->stats();
    CHECK(stats.published == 2);
    CHECK(stats.delivered == 2);
    CHECK(stats.dropped == 0);
}

TEST_CASE("rsyslogd with the shipped drop-in receives events over UDP", "[sinks][syslog][rsyslog]")
{
    TempDir dir("dw-rsyslog-");
    const int port = free_udp_port();
    Rsyslogd rsyslogd(dir, shipped_config(dir, port));
    INFO(rsyslogd.process().err());
    std::string error;
    auto target = parse_syslog_target("udp:127.0.0.1:" + std::to_string(port), &error);
    REQUIRE(target);
    auto sink = SyslogSink::open(*target, SyslogFormat {}, &error);
    REQUIRE(sink);
    // UDP says nothing about readiness: send until rsyslogd has bound the port.
    REQUIRE(wait_until(
        [&] {
            sink->publish(Event::from_line(R"({"event":"agent.warning","host":"vm-test","detail":"probe"})"));
            std::this_thread::sleep_for(100ms);
            return !parsed_lines(dir.file("out.log")).empty();
        },
        30s));
    sink->publish(Event::from_line(kKill));
    REQUIRE(wait_until(
        [&] {
            for (const auto &line : parsed_lines(dir.file("out.log")))
                if (line.at("msgid") == "action")
                    return true;
            return false;
        },
        20s));
    for (const auto &line : parsed_lines(dir.file("out.log"))) {
        if (line.at("msgid") != "action")
            continue;
        CHECK(line.at("sd_pid") == "4242");
        CHECK(line.at("json_comm") == "suricata");
        CHECK(line.at("hostname") == "vm-test");
        CHECK(nlohmann::json::parse(line.at("msg").get<std::string>()) == nlohmann::json::parse(kKill));
    }
    // Warnings and worse (the kill) also reach the general log.
    CHECK_THAT(read_file(dir.file("syslog")), Catch::Contains("\"rule\":\"runaway-log-writer\""));
}

TEST_CASE("with the syslog daemon gone, events are dropped and counted, and publish() returns", "[sinks][syslog]")
{
    TempDir dir("dw-rsyslog-");
    std::string error;
    auto target = parse_syslog_target("unix:" + dir.file("nobody.sock"), &error);
    REQUIRE(target);
    CHECK_FALSE(SyslogSink::open(*target, SyslogFormat {}, &error));
    CHECK_THAT(error, Catch::Contains("nobody.sock"));

    // Up at start, gone later (a restart): counted, never blocking.
    {
        Rsyslogd rsyslogd(dir, free_udp_port());
        REQUIRE(wait_until([&] { return ::access(dir.file("log.sock").c_str(), F_OK) == 0; }, 20s));
        target = parse_syslog_target("unix:" + dir.file("log.sock"), &error);
        auto sink = SyslogSink::open(*target, SyslogFormat {}, &error);
        REQUIRE(sink);
        rsyslogd.process().signal(SIGKILL);
        rsyslogd.process().wait(10s);
        ::unlink(dir.file("log.sock").c_str());
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < 100; ++i)
            sink->publish(Event::from_line(kKill));
        CHECK(std::chrono::steady_clock::now() - start < 2s);
        auto stats = sink->stats();
        CHECK(stats.published == 100);
        CHECK(stats.dropped == 100);
        CHECK_FALSE(stats.last_error.empty());
    }
}
