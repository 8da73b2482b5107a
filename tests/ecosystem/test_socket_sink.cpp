// `--json-socket`: real subscribers (socat, raw clients) on the event socket;
// a stalled one never slows publish() and its losses are counted
// (docs/integrations.md).
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <sstream>
#include <thread>

#include "ecosystem/ecosystem_support.h"
#include "sinks/socket_sink.h"
#include "support/spawn.h"

using namespace diskwatch;
using namespace diskwatch::test;
using namespace std::chrono_literals;

namespace {

// An event of realistic size (~300 bytes) carrying its sequence number.
std::string event_line(int seq)
{
    nlohmann::json event = {{"ts", "2026-11-25T17:40:28.123Z"}, {"event", "runaway"}, {"host", "test"},
                            {"seq", seq}, {"rule", "runaway-log-writer"},
                            {"process", {{"pid", 4242}, {"comm", "suricata"}, {"exe", "/usr/bin/suricata"}}},
                            {"mount", {{"path", "/var/log"}, {"dev", "8:1"}, {"fstype", "ext4"}}},
                            {"write_bps", 52428800}, {"padding", std::string(120, 'x')}};
    return event.dump();
}

std::vector<int> sequence_numbers(const std::string &text)
{
    std::vector<int> seqs;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line))
        seqs.push_back(nlohmann::json::parse(line).at("seq").get<int>());
    return seqs;
}

std::string socat()
{
    std::string path = find_tool("socat");
    if (path.empty())
        FAIL("socat is not installed (Debian package socat; scripts/install-deps.sh --test)");
    return path;
}

}  // namespace

TEST_CASE("a socat subscriber receives every event, in order, one JSON object per line", "[sinks][socket]")
{
    TempDir dir("dw-sock-");
    SocketSinkOptions options;
    options.listen_path = dir.file("events.sock");
    std::string error;
    auto sink = SocketSink::open(options, &error);
    REQUIRE(sink);
    CHECK(sink->name() == "socket:" + options.listen_path);
    struct stat info;
    REQUIRE(::stat(options.listen_path.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);  // root-only by default

    // socat writes to a file: a pipe nobody drains would stall it (and, rightly, the sink would drop).
    auto subscriber = ChildProcess::start(
        {socat(), "-u", "UNIX-CONNECT:" + options.listen_path, "CREATE:" + dir.file("received.ndjson")});
    REQUIRE(wait_until([&] { return sink->peers().size() == 1; }, 10s));
    CHECK(sink->peers()[0].pid == subscriber.pid());
    for (int seq = 0; seq < 500; ++seq)
        sink->publish(Event::from_line(event_line(seq)));
    sink->flush(10000);
    auto stats = sink->stats();
    CHECK(stats.published == 500);
    CHECK(stats.delivered == 500);
    CHECK(stats.dropped == 0);
    sink.reset();  // closes the connection: socat sees EOF and exits
    REQUIRE(subscriber.wait(10s) == 0);
    auto seqs = sequence_numbers(read_file(dir.file("received.ndjson")));
    REQUIRE(seqs.size() == 500);
    for (int seq = 0; seq < 500; ++seq)
        REQUIRE(seqs[seq] == seq);
    CHECK(::access(options.listen_path.c_str(), F_OK) != 0);  // the socket file is gone
}

TEST_CASE("a stalled subscriber does not slow publish(), its losses are counted, the live one gets everything",
          "[sinks][socket]")
{
    TempDir dir("dw-sock-");
    SocketSinkOptions options;
    options.listen_path = dir.file("events.sock");
    options.peer_queue_bytes = 64 * 1024;
    options.stall_timeout = 120s;  // this test is about losses, not disconnection
    std::string error;
    auto sink = SocketSink::open(options, &error);
    REQUIRE(sink);

    // First to connect (peer id 1): a subscriber that never reads.
    UniqueFd stalled = connect_unix_stream(options.listen_path, false, &error);
    REQUIRE(stalled);
    REQUIRE(wait_until([&] { return sink->peers().size() == 1; }, 10s));

    // Second (peer id 2): a subscriber that reads as fast as it can.
    std::atomic<int> received {0};
    std::atomic<bool> in_order {true};
    std::atomic<bool> done {false};
    UniqueFd live = connect_unix_stream(options.listen_path, false, &error);
    REQUIRE(live);
    struct JoinAtExit {
        std::thread thread;
        std::atomic<bool> &done;
        ~JoinAtExit()
        {
            done = true;
            if (thread.joinable())
                thread.join();
        }
    };
    JoinAtExit reader {std::thread([&] {
        std::string pending;
        char buffer[65536];
        while (!done) {
            timeval timeout {0, 100000};
            ::setsockopt(live.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
            ssize_t got = ::recv(live.get(), buffer, sizeof(buffer), 0);
            if (got == 0)
                break;
            if (got < 0)
                continue;
            pending.append(buffer, static_cast<size_t>(got));
            size_t newline;
            while ((newline = pending.find('\n')) != std::string::npos) {
                int seq = nlohmann::json::parse(pending.substr(0, newline)).at("seq").get<int>();
                if (seq != received)
                    in_order = false;
                ++received;
                pending.erase(0, newline + 1);
            }
        }
    }), done};
    REQUIRE(wait_until([&] { return sink->peers().size() == 2; }, 10s));

    // 60 batches of 100 events (~380 bytes each, ~2.3 MB in all, far beyond what the stalled
    // subscriber's queue and socket buffer hold). Each batch fits the live
    // subscriber's queue; it is allowed to catch up between batches.
    constexpr int kBatches = 60, kPerBatch = 100, kTotal = kBatches * kPerBatch;
    std::chrono::nanoseconds publishing {0}, slowest {0};
    int seq = 0;
    for (int batch = 0; batch < kBatches; ++batch) {
        for (int i = 0; i < kPerBatch; ++i, ++seq) {
            const Event line = Event::from_line(event_line(seq));
            const auto start = std::chrono::steady_clock::now();
            sink->publish(line);
            const auto took = std::chrono::steady_clock::now() - start;
            publishing += took;
            slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::nanoseconds>(took));
        }
        INFO("batch " << batch << ": live subscriber has " << received.load() << " of " << seq << "; peers: "
                      << [&] {
                             std::string text;
                             for (const auto &peer : sink->peers())
                                 text += std::to_string(peer.id) + " queued " + std::to_string(peer.queued_bytes) +
                                         " delivered " + std::to_string(peer.delivered) + " lost " +
                                         std::to_string(peer.lost) + "; ";
                             return text;
                         }());
        REQUIRE(wait_until([&] { return received.load() == seq; }, 20s));
    }
    done = true;
    reader.thread.join();

    INFO("publishing " << kTotal << " events took " << publishing.count() / 1000 << " us in all, the slowest "
                       << slowest.count() / 1000 << " us");
    // Generous bounds: a blocking write into the stalled subscriber would
    // hang here forever; a non-blocking one costs microseconds.
    CHECK(publishing < 2s);
    CHECK(slowest < 250ms);
    CHECK(in_order);
    CHECK(received == kTotal);

    auto peers = sink->peers();
    REQUIRE(peers.size() == 2);
    const auto &stalled_stats = peers[0].id < peers[1].id ? peers[0] : peers[1];
    const auto &live_stats = peers[0].id < peers[1].id ? peers[1] : peers[0];
    CHECK(live_stats.lost == 0);
    CHECK(live_stats.delivered == kTotal);
    // The stalled one got what fit in the kernel's buffer and its own queue;
    // the rest is lost, and counted.
    CHECK(stalled_stats.lost > kTotal / 2);
    CHECK(stalled_stats.queued_bytes <= options.peer_queue_bytes);
    auto stats = sink->stats();
    CHECK(stats.published == kTotal);
    CHECK(stats.dropped == stalled_stats.lost);
    CHECK(stats.delivered == live_stats.delivered + stalled_stats.delivered);
}

TEST_CASE("a subscriber that takes nothing for stall_timeout is disconnected and counted", "[sinks][socket]")
{
    TempDir dir("dw-sock-");
    SocketSinkOptions options;
    options.listen_path = dir.file("events.sock");
    options.peer_queue_bytes = 16 * 1024;
    options.stall_timeout = 300ms;
    std::string error;
    auto sink = SocketSink::open(options, &error);
    REQUIRE(sink);
    UniqueFd stalled = connect_unix_stream(options.listen_path, false, &error);
    REQUIRE(stalled);
    REQUIRE(wait_until([&] { return sink->peers().size() == 1; }, 10s));
    // The agent keeps emitting; once the subscriber's socket buffer and
    // queue are full and it takes nothing for 300 ms, it is cut off.
    int seq = 0;
    REQUIRE(wait_until(
        [&] {
            for (int i = 0; i < 50; ++i)
                sink->publish(Event::from_line(event_line(seq++)));
            return sink->peers().empty();
        },
        30s));
    CHECK(sink->counters().subscribers_disconnected_slow == 1);
    // Its socket now reads the events that made it, then EOF.
    char buffer[65536];
    ssize_t got;
    size_t total = 0;
    while ((got = ::recv(stalled.get(), buffer, sizeof(buffer), 0)) > 0)
        total += static_cast<size_t>(got);
    CHECK(got == 0);
    CHECK(total > 0);
    auto stats = sink->stats();
    CHECK(stats.dropped > 0);
    CHECK(stats.published == static_cast<uint64_t>(seq));
    // Every event published while it was connected was delivered or dropped
    // (the last batch may have come after it was cut off: nobody to count for).
    CHECK(stats.dropped + stats.delivered <= stats.published);
    CHECK(stats.dropped + stats.delivered + 50 >= stats.published);
}

TEST_CASE("more subscribers than allowed are turned away and counted", "[sinks][socket]")
{
    TempDir dir("dw-sock-");
    SocketSinkOptions options;
    options.listen_path = dir.file("events.sock");
    options.max_subscribers = 1;
    std::string error;
    auto sink = SocketSink::open(options, &error);
    REQUIRE(sink);
    UniqueFd first = connect_unix_stream(options.listen_path, false, &error);
    REQUIRE(wait_until([&] { return sink->peers().size() == 1; }, 10s));
    UniqueFd second = connect_unix_stream(options.listen_path, false, &error);
    REQUIRE(second);
    char byte;
    CHECK(::recv(second.get(), &byte, 1, 0) == 0);  // closed at once
    CHECK(sink->counters().subscribers_refused == 1);
    CHECK(sink->peers().size() == 1);
}

TEST_CASE("connect mode pushes into a shipper's listening socket and reconnects when it comes back",
          "[sinks][socket]")
{
    TempDir dir("dw-sock-");
    SocketSinkOptions options;
    options.connect_path = dir.file("shipper.sock");
    options.reconnect_interval = 100ms;
    std::string error;
    // The shipper is not up yet: the sink starts anyway, and counts.
    auto sink = SocketSink::open(options, &error);
    REQUIRE(sink);
    sink->publish(Event::from_line(event_line(-1)));
    CHECK(sink->stats().dropped == 1);
    CHECK(sink->counters().connect_failures >= 1);
    CHECK_THAT(sink->stats().last_error, Catch::Contains("no such socket"));

    // socat as the listening shipper (what Vector's socket source in
    // unix_stream mode does), printing what it receives.
    auto shipper = ChildProcess::start(
        {socat(), "-u", "UNIX-LISTEN:" + options.connect_path, "CREATE:" + dir.file("received.ndjson")});
    REQUIRE(wait_until([&] { return !sink->peers().empty(); }, 10s));
    CHECK(sink->peers()[0].outbound);
    for (int seq = 0; seq < 100; ++seq)
        sink->publish(Event::from_line(event_line(seq)));
    sink->flush(10000);
    sink.reset();
    REQUIRE(shipper.wait(10s) == 0);
    auto seqs = sequence_numbers(read_file(dir.file("received.ndjson")));
    REQUIRE(seqs.size() == 100);
    CHECK(seqs.front() == 0);
    CHECK(seqs.back() == 99);
}

TEST_CASE("the event socket never steals a live socket, replaces a stale one, and never deletes a file",
          "[sinks][socket]")
{
    TempDir dir("dw-sock-");
    SocketSinkOptions options;
    options.listen_path = dir.file("events.sock");
    std::string error;
    auto first = SocketSink::open(options, &error);
    REQUIRE(first);
    CHECK_FALSE(SocketSink::open(options, &error));
    CHECK_THAT(error, Catch::Contains("already in use"));

    // A socket file whose owner died (no one listens): replaced.
    {
        UnixListenOptions listen_options;
        UniqueFd stale = listen_unix_stream(dir.file("stale.sock"), listen_options, &error);
        REQUIRE(stale);
    }  // closed, file left behind
    REQUIRE(::access(dir.file("stale.sock").c_str(), F_OK) == 0);
    options.listen_path = dir.file("stale.sock");
    CHECK(SocketSink::open(options, &error));

    write_file(dir.file("precious.txt"), "data");
    options.listen_path = dir.file("precious.txt");
    CHECK_FALSE(SocketSink::open(options, &error));
    CHECK_THAT(error, Catch::Contains("not a socket"));
    CHECK(read_file(dir.file("precious.txt")) == "data");
}
