// The journald sink speaks journald's native protocol. journald itself cannot
// be started privately (it owns /run/systemd/journal), so the test binds a
// datagram socket of its own and decodes what arrives; when the real journal
// socket exists the sink is also checked to reach it.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <map>

#include "ecosystem/ecosystem_support.h"
#include "sinks/syslog_sink.h"

using namespace diskwatch;
using namespace diskwatch::test;

namespace {

// Decodes the native protocol: KEY=value\n, or KEY\n<u64le size><value>\n.
std::map<std::string, std::string> decode_entry(const std::string &entry)
{
    std::map<std::string, std::string> fields;
    size_t at = 0;
    while (at < entry.size()) {
        size_t newline = entry.find('\n', at);
        REQUIRE(newline != std::string::npos);
        std::string line = entry.substr(at, newline - at);
        size_t equals = line.find('=');
        if (equals != std::string::npos) {
            fields[line.substr(0, equals)] = line.substr(equals + 1);
            at = newline + 1;
            continue;
        }
        uint64_t size = 0;
        for (int i = 0; i < 8; ++i)
            size |= static_cast<uint64_t>(static_cast<unsigned char>(entry[newline + 1 + i])) << (8 * i);
        fields[line] = entry.substr(newline + 9, size);
        REQUIRE(entry[newline + 9 + size] == '\n');
        at = newline + 10 + size;
    }
    return fields;
}

}  // namespace

TEST_CASE("journald entries arrive as one datagram with decodable fields", "[sinks][journald]")
{
    TempDir dir("dw-journal-");
    const std::string path = dir.file("journal.sock");
    UniqueFd receiver(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path.c_str());
    REQUIRE(::bind(receiver.get(), reinterpret_cast<sockaddr *>(&address), sizeof(address)) == 0);
    REQUIRE(journald_available(path));
    CHECK_FALSE(journald_available(dir.file("absent.sock")));

    std::string error;
    auto sink = JournaldSink::open(path, "ebpf-diskwatch", &error);
    REQUIRE(sink);
    const std::string line =
        R"({"event":"agent.warning","host":"vm","detail":"line one\nline two","process":{"pid":7,"comm":"dd"}})";
    sink->publish(Event::from_line(line));
    char buffer[65536];
    ssize_t got = ::recv(receiver.get(), buffer, sizeof(buffer), 0);
    REQUIRE(got > 0);
    auto fields = decode_entry(std::string(buffer, static_cast<size_t>(got)));
    CHECK(fields.at("MESSAGE") == line);
    CHECK(fields.at("PRIORITY") == "4");
    CHECK(fields.at("SYSLOG_IDENTIFIER") == "ebpf-diskwatch");
    CHECK(fields.at("DISKWATCH_EVENT") == "agent.warning");
    CHECK(fields.at("DISKWATCH_DETAIL") == "line one\nline two");
    CHECK(fields.at("DISKWATCH_PROCESS_PID") == "7");
    CHECK(sink->stats().delivered == 1);

    receiver.reset();  // journald gone: dropped and counted, never blocking
    sink->publish(Event::from_line(line));
    CHECK(sink->stats().dropped == 1);
}

TEST_CASE("the real journald accepts our entries when this machine runs it", "[sinks][journald]")
{
    if (!journald_available()) {
        WARN("no " << kJournaldSocket << " here (not running under systemd): only the protocol test ran");
        return;
    }
    std::string error;
    auto sink = JournaldSink::open(kJournaldSocket, "ebpf-diskwatch-test", &error);
    REQUIRE(sink);
    sink->publish(Event::from_line(R"({"event":"agent.start","host":"test"})"));
    CHECK(sink->stats().delivered == 1);
}
