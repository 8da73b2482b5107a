// The event schema's building blocks (docs/events.md): timestamps, subjects,
// deduplication, mount alerts once per crossing, and sinks that never block.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>

#include "events/events.h"
#include "rules/mount_watch.h"
#include "sinks/file_sink.h"
#include "sinks/queued_sink.h"

using namespace diskwatch;

TEST_CASE("timestamps are RFC 3339 UTC with sub-second precision", "[events]")
{
    const auto t = std::chrono::system_clock::time_point(std::chrono::microseconds(1764092666123456LL));
    CHECK(rfc3339_utc(t) == "2025-11-25T17:44:26.123456Z");
    const auto event = agent_start_event("host-a", "0.1.0", 1, "tp_btf", {}, Policy {}, false, 0).record();
    CHECK(std::regex_match(event["ts"].get<std::string>(),
                           std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
    CHECK(event["event"] == "agent.start");
    CHECK(event["host"] == "host-a");
}

TEST_CASE("cgroup subjects name their unit and container", "[events]")
{
    const std::string id(64, 'a');
    auto docker = cgroup_json(7, "/system.slice/docker-" + id + ".scope");
    CHECK(docker["id"] == 7);
    CHECK(docker["unit"] == "docker-" + id + ".scope");
    CHECK(docker["container"] == id);
    auto service = cgroup_json(8, "/system.slice/nginx.service");
    CHECK(service["unit"] == "nginx.service");
    CHECK(service["container"] == "");
    CHECK(container_of_cgroup("/docker/" + id) == id);
    CHECK(unit_of_cgroup("/") == "");
}

TEST_CASE("runaway events carry the subject, the numbers and the rule's", "[events]")
{
    PolicyRule rule;
    rule.name = "r";
    rule.action = RuleAction::kill;
    rule.when.any = {{Condition::Kind::write_rate, 1000, 2}};
    Subject subject;
    subject.pid = 42;
    subject.comm = "w";
    subject.cgroup_id = 9;
    subject.cgroup = "/x";
    subject.mount = "/data";
    subject.dev = "7:1";
    RuleMeasures measures;
    measures.write_bps = 2000.4;
    measures.condition = "write_rate";
    auto event = runaway_event("h", rule, subject, measures, true, true).record();
    CHECK(event["event"] == "runaway");
    CHECK(event["state"] == "started");
    CHECK(event["protected"] == true);
    CHECK(event["process"]["pid"] == 42);
    CHECK(event["cgroup"]["path"] == "/x");
    CHECK(event["mount"]["path"] == "/data");
    CHECK(event["write_bps"] == 2000.0);
    CHECK(event["eta_full_s"].is_null());
    CHECK(event["when"]["write_rate_bps"] == 1000.0);
    CHECK(event["when"]["for_s"] == 2.0);
}

TEST_CASE("deduplication: a state change is one event, per key and rule", "[events]")
{
    EventDeduplicator dedup;
    CHECK(dedup.changed("process:1", "r", "started"));
    CHECK_FALSE(dedup.changed("process:1", "r", "started"));
    CHECK(dedup.changed("process:1", "other", "started"));
    CHECK(dedup.changed("process:2", "r", "started"));
    CHECK(dedup.changed("process:1", "r", "ended"));
    CHECK(dedup.suppressed() == 1);
    dedup.forget("process:1", "r");
    CHECK(dedup.changed("process:1", "r", "ended"));
}

TEST_CASE("mount alerts: one per crossing, re-armed with a margin", "[events][mounts]")
{
    MountAlerts settings;
    settings.usage_alert_percent = 80;
    settings.eta_alert_s = 3600;
    MountWatch watch(settings);
    MountReport mount;
    mount.mount = "/data";
    mount.dev = "7:1";
    mount.used_pct = 79;
    CHECK(watch.evaluate({mount}).empty());
    mount.used_pct = 81;
    auto alerts = watch.evaluate({mount});
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].kind == MountAlert::Kind::usage);
    CHECK(alerts[0].raised);
    CHECK(watch.evaluate({mount}).empty());
    mount.used_pct = 79.5;  // within the margin: no flap
    CHECK(watch.evaluate({mount}).empty());
    mount.used_pct = 70;
    alerts = watch.evaluate({mount});
    REQUIRE(alerts.size() == 1);
    CHECK_FALSE(alerts[0].raised);
    mount.eta_full_s = 600;
    alerts = watch.evaluate({mount});
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].kind == MountAlert::Kind::eta);
    CHECK(watch.evaluate({mount}).empty());
    mount.eta_full_s.reset();
    alerts = watch.evaluate({mount});
    REQUIRE(alerts.size() == 1);
    CHECK_FALSE(alerts[0].raised);
}

namespace {

// A sink whose output is stuck until released: publish() must still return at once.
class StuckSink final : public QueuedLineSink {
public:
    explicit StuckSink(size_t capacity) : QueuedLineSink(capacity) { start(); }
    ~StuckSink() override
    {
        release();
        stop();
    }
    void release()
    {
        {
            std::lock_guard lock(mutex_);
            released_ = true;
        }
        wake_.notify_all();
    }
    std::string name() const override { return "stuck"; }
    std::vector<std::string> lines;

private:
    bool write_line(const std::string &line, std::string *) override
    {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return released_; });
        lines.push_back(line);
        return true;
    }
    std::mutex mutex_;
    std::condition_variable wake_;
    bool released_ = false;
};

}  // namespace

TEST_CASE("publish never blocks: a stuck output drops events and counts them", "[events][sinks]")
{
    StuckSink sink(4);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i)
        sink.publish(Event::from_line("{\"n\":" + std::to_string(i) + "}"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    auto stats = sink.stats();
    CHECK(stats.published + stats.dropped == 100);
    CHECK(stats.dropped >= 95);
    CHECK(stats.last_error.find("queue full") != std::string::npos);
    sink.release();
    sink.flush(2000);
    CHECK(sink.stats().delivered == stats.published);
    CHECK(sink.lines.front() == "{\"n\":0}\n");
}

TEST_CASE("the file sink appends one line per event and reopens", "[events][sinks]")
{
    char dir[] = "/tmp/dw-sink-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    const std::string path = std::string(dir) + "/events.json";
    std::string error;
    {
        auto sink = FileSink::open(path, &error);
        REQUIRE(sink);
        sink->publish(Event::from_line("{\"a\":1}"));
        sink->flush(2000);
        REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);  // logrotate moves it away
        sink->reopen();
        sink->publish(Event::from_line("{\"b\":2}"));
        sink->flush(2000);
        CHECK(sink->stats().delivered == 2);
        CHECK(sink->name() == "file:" + path);
    }
    std::ifstream rotated(path + ".1"), fresh(path);
    std::string line;
    REQUIRE(std::getline(rotated, line));
    CHECK(line == "{\"a\":1}");
    REQUIRE(std::getline(fresh, line));
    CHECK(line == "{\"b\":2}");
    CHECK_FALSE(FileSink::open("/nonexistent-dir/x.json", &error));
    CHECK(error.find("/nonexistent-dir/x.json: open:") == 0);
    ::unlink(path.c_str());
    ::unlink((path + ".1").c_str());
    ::rmdir(dir);
}

TEST_CASE("the file sink rotates at --json-max-size, keeps --json-keep files of whole lines, newest last",
          "[events][sinks]")
{
    char dir[] = "/tmp/dw-sink-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    const std::string path = std::string(dir) + "/events.json";
    constexpr int kLines = 300;
    std::string error;
    FileSinkOptions options {path};
    options.max_size_bytes = 1024;
    options.keep = 2;
    {
        auto sink = FileSink::open(options, &error);
        REQUIRE(sink);
        for (int i = 0; i < kLines; ++i)
            sink->publish(Event::from_line("{\"n\":" + std::to_string(i) + ",\"pad\":\"" +
                                           std::string(static_cast<size_t>(i % 40), 'x') + "\"}"));
        sink->flush(5000);
        CHECK(sink->stats().delivered == kLines);
        CHECK(sink->stats().dropped == 0);  // rotation is not loss: the oldest go by design
    }
    CHECK_FALSE(std::filesystem::exists(path + ".3"));
    // PATH.2, PATH.1, PATH: consecutive numbers ending with the last one.
    std::vector<int> seen;
    for (const std::string file : {path + ".2", path + ".1", path}) {
        INFO(file);
        REQUIRE(std::filesystem::exists(file));
        CHECK(std::filesystem::file_size(file) <= 1024);
        std::ifstream in(file);
        std::string line;
        while (std::getline(in, line))
            seen.push_back(nlohmann::json::parse(line).at("n").get<int>());
    }
    REQUIRE(seen.size() > 20);
    CHECK(seen.back() == kLines - 1);
    for (size_t i = 1; i < seen.size(); ++i)
        CHECK(seen[i] == seen[i - 1] + 1);
    for (const std::string file : {path, path + ".1", path + ".2"})
        ::unlink(file.c_str());

    // --json-keep 0: the file starts over, nothing kept beside it.
    options.keep = 0;
    {
        auto sink = FileSink::open(options, &error);
        REQUIRE(sink);
        for (int i = 0; i < 100; ++i)
            sink->publish(Event::from_line("{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(30, 'y') + "\"}"));
        sink->flush(5000);
        CHECK(sink->stats().delivered == 100);
    }
    CHECK(std::filesystem::file_size(path) <= 1024);
    CHECK_FALSE(std::filesystem::exists(path + ".1"));
    ::unlink(path.c_str());
    ::rmdir(dir);
}

TEST_CASE("event names that are not UTF-8 carry their exact bytes in <key>_b64, as top --json does",
          "[events][names]")
{
    diskwatch::Subject subject;
    subject.pid = 42;
    subject.comm = "w\xff\xfe\x1b[2J";
    subject.exe = "/usr/bin/ok";
    subject.cgroup = "/bad\xc3(";
    subject.mount = "/mnt/\xed\xa0\x80";
    const auto process = diskwatch::process_json(subject);
    CHECK(process.at("comm_b64") == "d//+G1sySg==");  // base64 of the exact bytes
    CHECK_FALSE(process.contains("exe_b64"));          // valid UTF-8 needs none
    CHECK(process.at("exe") == "/usr/bin/ok");
    const auto cgroup = diskwatch::cgroup_json(7, subject.cgroup);
    CHECK(cgroup.at("path_b64") == "L2JhZMMo");
    CHECK(diskwatch::mount_json(subject).at("path_b64") == "L21udC/toIA=");
    // The line the agent writes stays valid JSON, printable ASCII.
    const std::string line = process.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    for (unsigned char c : line)
        CHECK((c >= 0x20 && c < 0x7f));
    CHECK(nlohmann::json::parse(line).at("comm") == "w\xef\xbf\xbd\xef\xbf\xbd\x1b[2J");
}

TEST_CASE("an event's when keeps the flat keys, and adds any and all lists where the rule has them (docs/events.md)",
          "[events]")
{
    PolicyRule flat;
    flat.when.any = {{Condition::Kind::write_rate, 1000, 2}, {Condition::Kind::growth_rate, 500, 2}};
    const auto same = rule_json(flat);
    CHECK(same == nlohmann::json({{"write_rate_bps", 1000.0}, {"for_s", 2.0}, {"growth_rate_bps", 500.0}}));

    PolicyRule lists;
    lists.when.any = {{Condition::Kind::write_rate, 1000, 2}, {Condition::Kind::write_rate, 5000, 0}};
    lists.when.all = {{Condition::Kind::mount_usage, 90, 0}};
    const auto when = rule_json(lists);
    CHECK(when["write_rate_bps"] == 1000.0);  // the first of its kind, as before
    REQUIRE(when["any"].size() == 2);
    CHECK(when["any"][1] == nlohmann::json({{"write_rate_bps", 5000.0}, {"for_s", 0.0}}));
    REQUIRE(when["all"].size() == 1);
    CHECK(when["all"][0] == nlohmann::json({{"mount_usage_percent", 90.0}}));
}
