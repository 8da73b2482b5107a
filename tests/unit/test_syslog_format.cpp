// RFC 5424 messages and journald entries made from events (docs/integrations.md).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sinks/event_fields.h"
#include "sinks/syslog_sink.h"

using namespace diskwatch;

namespace {

const std::string kKill =
    R"({"ts":"2026-11-25T17:40:28.123456Z","event":"action","host":"vm-7","action":"kill","rule":"runaway-log-writer","dry_run":false,"mechanism":"pidfd","process":{"pid":4242,"comm":"suricata","exe":"/usr/bin/suricata"},"mount":{"path":"/var/log","used_pct":91.5},"write_bps":52428800,"top_writers":[{"pid":1}]})";

}  // namespace

TEST_CASE("an event becomes one RFC 5424 message with structured data and the JSON as MSG", "[syslog]")
{
    const std::string message = format_rfc5424(Event::from_line(kKill), SyslogFormat {});
    const std::string header =
        "<28>1 2026-11-25T17:40:28.123456Z vm-7 ebpf-diskwatch " + std::to_string(::getpid()) + " action ";
    REQUIRE(message.rfind(header, 0) == 0);  // daemon(3)*8 + warning(4)
    CHECK_THAT(message, Catch::Contains("[diskwatch@32473 event=\"action\" action=\"kill\" "
                                        "rule=\"runaway-log-writer\" dry_run=\"false\" mechanism=\"pidfd\" "
                                        "process.pid=\"4242\" process.comm=\"suricata\" "
                                        "process.exe=\"/usr/bin/suricata\" mount.path=\"/var/log\" "
                                        "mount.used_pct=\"91.5\" write_bps=\"52428800\"] "));
    CHECK(message.substr(message.size() - kKill.size()) == kKill);
    CHECK_THAT(message, !Catch::Contains("top_writers="));  // arrays stay in the JSON
}

TEST_CASE("structured data values escape quote, backslash and bracket", "[syslog]")
{
    const std::string line = R"({"event":"runaway","process":{"comm":"a\"b]c\\d"}})";
    const std::string message = format_rfc5424(Event::from_line(line), SyslogFormat {});
    CHECK_THAT(message, Catch::Contains(R"(process.comm="a\"b\]c\\d")"));
}

TEST_CASE("a bad timestamp or hostname becomes the sender's own or NILVALUE, never a broken header", "[syslog]")
{
    SyslogFormat format;
    format.hostname = "host with spaces";
    const std::string message = format_rfc5424(Event::from_line(R"({"ts":"yesterday","event":"agent.start"})"), format);
    CHECK(message.rfind("<30>1 20", 0) == 0);  // info; a fresh timestamp
    CHECK_THAT(message, Catch::Contains("Z - ebpf-diskwatch "));
    CHECK_THAT(format_rfc5424(Event::from_line("not json"), SyslogFormat {}), Catch::Contains(" - - not json"));
}

TEST_CASE("an oversized event keeps header and structured data, cuts the MSG, and says so", "[syslog]")
{
    SyslogFormat format;
    format.max_message_bytes = 400;
    bool truncated = false;
    const std::string message = format_rfc5424(Event::from_line(kKill), format, &truncated);
    CHECK(truncated);
    CHECK(message.size() <= 400);
    CHECK_THAT(message, Catch::Contains("[diskwatch@32473 event=\"action\""));
    bool small_truncated = true;
    format_rfc5424(Event::from_line(R"({"event":"agent.start"})"), SyslogFormat {}, &small_truncated);
    CHECK_FALSE(small_truncated);
}

TEST_CASE("severities follow what an operator must look at", "[syslog]")
{
    using json = nlohmann::ordered_json;
    CHECK(event_severity(Event::from_record(json {{"event", "action"}, {"action", "kill"}})) == 4);
    CHECK(event_severity(Event::from_record(json {{"event", "action"}, {"dry_run", true}})) == 5);
    CHECK(event_severity(Event::from_record(json {{"event", "mount.eta"}})) == 4);
    CHECK(event_severity(Event::from_record(json {{"event", "policy.reload"}, {"error", "bad key"}})) == 3);
    CHECK(event_severity(Event::from_record(json {{"event", "agent.start"}})) == 6);
    CHECK(event_severity(Event::from_record(json {{"event", "something.new"}})) == 5);
}

TEST_CASE("syslog targets: unix socket path or UDP address", "[syslog][cli]")
{
    std::string error;
    auto dev_log = parse_syslog_target("/dev/log", &error);
    REQUIRE(dev_log);
    CHECK(dev_log->transport == SyslogTarget::Transport::unix_datagram);
    CHECK(dev_log->path == "/dev/log");
    auto unix_target = parse_syslog_target("unix:/run/rsyslog/in.sock", &error);
    REQUIRE(unix_target);
    CHECK(unix_target->path == "/run/rsyslog/in.sock");
    auto udp = parse_syslog_target("udp:127.0.0.1:5514", &error);
    REQUIRE(udp);
    CHECK(udp->transport == SyslogTarget::Transport::udp);
    CHECK(udp->host == "127.0.0.1");
    CHECK(udp->port == 5514);
    auto udp6 = parse_syslog_target("udp:[::1]:514", &error);
    REQUIRE(udp6);
    CHECK(udp6->host == "::1");
    CHECK_FALSE(parse_syslog_target("udp:logs.example.com:514", &error));
    CHECK_THAT(error, Catch::Contains("numeric"));
    CHECK_FALSE(parse_syslog_target("udp:127.0.0.1:0", &error));
    CHECK_FALSE(parse_syslog_target("relative/path", &error));
    CHECK_THAT(error, Catch::Contains("relative/path"));
}

TEST_CASE("a journal entry has MESSAGE, PRIORITY, identifier and one DISKWATCH_ field per value", "[journald]")
{
    const std::string entry = format_journal_entry(Event::from_line(kKill), "ebpf-diskwatch");
    CHECK_THAT(entry, Catch::StartsWith("MESSAGE=" + kKill + "\n"));
    CHECK_THAT(entry, Catch::Contains("\nPRIORITY=4\n"));
    CHECK_THAT(entry, Catch::Contains("\nSYSLOG_IDENTIFIER=ebpf-diskwatch\n"));
    CHECK_THAT(entry, Catch::Contains("\nDISKWATCH_PROCESS_PID=4242\n"));
    CHECK_THAT(entry, Catch::Contains("\nDISKWATCH_RULE=runaway-log-writer\n"));
    CHECK_THAT(entry, Catch::Contains("\nDISKWATCH_MOUNT_PATH=/var/log\n"));

    // A value with a line feed takes the binary form: NAME\n, 64-bit LE size, value, \n.
    const std::string multi = format_journal_entry(Event::from_line(R"({"event":"agent.warning","detail":"a\nb"})"), "x");
    const std::string expected = std::string("DISKWATCH_DETAIL\n") + std::string("\x03\0\0\0\0\0\0\0", 8) + "a\nb\n";
    CHECK_THAT(multi, Catch::Contains(expected));
}

TEST_CASE("events with null or unexpected field types never make a sink throw", "[syslog][journald][metrics]")
{
    const std::string odd = R"({"event":"action","action":"release","rule":null,"dry_run":null,"ts":42,"host":null})";
    CHECK_NOTHROW(format_rfc5424(Event::from_line(odd), SyslogFormat {}));
    CHECK_THAT(format_rfc5424(Event::from_line(odd), SyslogFormat {}), Catch::Contains(" action [diskwatch@32473 event=\"action\" action=\"release\"]"));
    CHECK_NOTHROW(format_journal_entry(Event::from_line(odd), "x"));
    CHECK(event_severity(Event::from_line(odd)) == 4);
    CHECK_NOTHROW(format_rfc5424(Event::from_line(R"({"event":null})"), SyslogFormat {}));
    CHECK_NOTHROW(format_rfc5424(Event::from_line(R"([1,2,3])"), SyslogFormat {}));
}
