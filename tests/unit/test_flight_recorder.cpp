// The flight recorder above its store: windows merge refreshes by identity,
// the recorder writes both tiers through its thread, the history reads them
// back as one timeline, and times are read as people write them.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "recorder/flight_recorder.h"
#include "recorder/history.h"
#include "recorder/report_window.h"

using namespace diskwatch;

namespace {

struct TempDir {
    std::string path;
    TempDir()
    {
        char pattern[] = "/tmp/dw-recorder-XXXXXX";
        REQUIRE(::mkdtemp(pattern));
        path = pattern;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

ReportRow row(uint32_t pid, const std::string &comm, uint64_t bytes, uint64_t growth, uint64_t nospace = 0)
{
    ReportRow r;
    r.pid = pid;
    r.comm = comm;
    r.exe = "/usr/bin/" + comm;
    r.cgroup_id = 100 + pid;
    r.cgroup = "/system.slice/" + comm + ".service";
    r.unit = comm + ".service";
    r.dev = "7:3";
    r.kernel_dev = (7u << 20) | 3u;
    r.mount = "/srv";
    r.write_bytes = bytes;
    r.growth_bytes = growth;
    r.nospace_failures = nospace;
    r.write_calls = bytes / 4096;
    r.total_bytes = bytes;
    return r;
}

WriteReport refresh(double ts, std::vector<ReportRow> rows, uint64_t used = 1000)
{
    WriteReport report;
    report.ts = ts;
    report.interval_s = 0.25;
    for (auto &r : rows)
        report.rows.push_back(std::move(r));
    MountReport mount;
    mount.mount = "/srv";
    mount.dev = "7:3";
    mount.used_bytes = used;
    mount.write_bytes = 10;
    report.mounts.push_back(mount);
    return report;
}

}  // namespace

TEST_CASE("report window: a writer's refreshes are summed, its latest name kept, rates over the window", "[recorder]")
{
    ReportWindow window;
    ReportRow first = row(10, "suricata", 1000, 800);
    first.files.push_back({"/var/log/suricata/eve.json", 42, false, 100});
    window.add(refresh(100.25, {first, row(11, "postgres", 50, 0)}));
    ReportRow renamed = row(10, "Suricata-Main", 3000, 2200, 4);
    renamed.files.push_back({"", 43, false, 0});  // a file the refresh could not name
    window.add(refresh(100.50, {renamed}, 2000));
    window.add(refresh(100.75, {row(12, "victim", 0, 0, 9)}, 3000));
    const WriteReport merged = window.take(1);
    CHECK(merged.interval_s == Approx(0.75));
    CHECK(merged.ts == Approx(100.75));
    // keep 1: the top writer by bytes (and by growth), and the top by refused writes.
    REQUIRE(merged.rows.size() == 2);
    const ReportRow &suricata = merged.rows[0];
    CHECK(suricata.comm == "Suricata-Main");
    CHECK(suricata.write_bytes == 4000);
    CHECK(suricata.growth_bytes == 3000);
    CHECK(suricata.nospace_failures == 4);
    CHECK(suricata.write_bps == Approx(4000 / 0.75));
    REQUIRE(suricata.files.size() == 2);
    CHECK(suricata.files[1].path == "/var/log/suricata/eve.json");  // named while it was open
    CHECK(merged.rows[1].comm == "victim");
    CHECK(merged.rows[1].nospace_failures == 9);
    REQUIRE(merged.mounts.size() == 1);
    CHECK(merged.mounts[0].used_bytes == 3000);  // the latest
    CHECK(merged.mounts[0].write_bytes == 30);   // the window's
    CHECK(window.empty());
}

TEST_CASE("report window: a pid reused by another process is another writer", "[recorder]")
{
    ReportWindow window;
    ReportRow before = row(10, "old", 100, 0);
    before.start_boot_s = 5;
    ReportRow after = row(10, "new", 200, 0);
    after.start_boot_s = 9;
    window.add(refresh(1, {before}));
    window.add(refresh(2, {after}));
    CHECK(window.take(10).rows.size() == 2);
}

TEST_CASE("flight recorder: windows of both tiers, with their events, read back as one timeline", "[recorder]")
{
    TempDir dir;
    RecorderSettings settings;
    settings.path = dir.path + "/rec";
    settings.max_bytes = 2 << 20;
    settings.resolution_s = 1;
    settings.coarse_resolution_s = 4;
    std::vector<std::string> warnings;
    {
        FlightRecorder recorder(settings, "test", [&](const std::string &w) { warnings.push_back(w); });
        // 12 s of refreshes, 4 a second, starting on a coarse boundary.
        const double t0 = 1'000'000;
        for (int i = 1; i <= 48; ++i) {
            const double ts = t0 + i * 0.25;
            RecorderCapture capture;
            capture.process = refresh(ts, {row(10, "suricata", 1000, 1000)}, static_cast<uint64_t>(i) * 1000);
            capture.process.by = GroupBy::process;
            capture.cgroup = capture.process;
            capture.cgroup.by = GroupBy::cgroup;
            capture.mount = capture.process;
            capture.mount.by = GroupBy::mount;
            if (i == 20) {
                nlohmann::ordered_json event = {{"event", "action"}, {"action", "throttle"}};
                recorder.note_event(event.dump());
            }
            recorder.capture(std::move(capture));
            if (i % 8 == 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the queue holds 64
        }
        for (int i = 0; i < 200 && recorder.status().records < 14; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        CHECK(recorder.status().recording);
        CHECK(recorder.status().dropped_captures == 0);
    }  // the destructor writes the windows still open
    CHECK(warnings.empty());
    const History finest = load_history(settings.path, 0, 1e10);  // the start is stamped now
    CHECK(finest.warnings.empty());
    REQUIRE(finest.starts.size() == 1);
    CHECK(finest.starts[0].pid == ::getpid());
    // 12 fine windows of 1 s (the first and last partial), oldest first.
    REQUIRE(finest.windows.size() >= 12);
    CHECK(finest.windows.back().ts < 2e6);
    uint64_t bytes = 0;
    bool saw_event = false;
    for (size_t i = 0; i < finest.windows.size(); ++i) {
        const auto &window = finest.windows[i];
        CHECK(window.tier == RecordTier::fine);
        if (i > 0)
            CHECK(window.ts > finest.windows[i - 1].ts);
        const WriteReport &report = window.report(GroupBy::process);
        for (const auto &r : report.rows)
            bytes += r.write_bytes;
        for (const auto &event : window.events)
            saw_event = saw_event || event.value("action", "") == "throttle";
    }
    CHECK(bytes == 48 * 1000);  // every refresh in exactly one window
    CHECK(saw_event);

    // fewest: the coarse windows (4 s), then fine ones after the last coarse one.
    uint64_t folded_bytes = 0;
    size_t coarse = 0;
    double last_ts = 0;
    load_history(settings.path, 0, 2e6, HistoryResolution::fewest, [&](RecordedWindow &&window) {
        CHECK(window.ts > last_ts);
        last_ts = window.ts;
        coarse += window.tier == RecordTier::coarse;
        for (const auto &r : window.report(GroupBy::process).rows)
            folded_bytes += r.write_bytes;
    });
    CHECK(coarse >= 3);
    CHECK(folded_bytes == 48 * 1000);  // each moment once
}

TEST_CASE("flight recorder: a directory it cannot use is said, and the agent goes on", "[recorder]")
{
    TempDir dir;
    const std::string file = dir.path + "/not-a-dir";
    REQUIRE(std::system(("touch " + file).c_str()) == 0);
    RecorderSettings settings;
    settings.path = file + "/rec";
    std::vector<std::string> warnings;
    {
        FlightRecorder recorder(settings, "test", [&](const std::string &w) { warnings.push_back(w); });
        for (int i = 0; i < 100 && recorder.status().problem.empty(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        CHECK_FALSE(recorder.status().recording);
        CHECK_THAT(recorder.status().problem, Catch::Contains("not recording"));
    }
    REQUIRE_FALSE(warnings.empty());
    CHECK_THAT(warnings[0], Catch::Contains(settings.path));
}

TEST_CASE("parse_when: the times people write", "[recorder]")
{
    const double now = 1'764'950'400;  // 2025-12-05T16:00:00Z
    std::string error;
    CHECK(*parse_when("now", now, &error) == now);
    CHECK(*parse_when("2h ago", now, &error) == now - 7200);
    CHECK(*parse_when("90m", now, &error) == now - 5400);
    CHECK(*parse_when("1d ago", now, &error) == now - 86400);
    CHECK(*parse_when("@1764900000", now, &error) == 1764900000);
    CHECK(*parse_when("2025-12-05T14:00:00Z", now, &error) == now - 7200);
    CHECK(*parse_when("2025-12-05T14:00Z", now, &error) == now - 7200);
    CHECK(*parse_when("14:00Z", now, &error) == now - 7200);
    for (const char *bad : {"", "yesterday", "2h from now", "25:99", "@x", "2025-13-45"}) {
        INFO(bad);
        CHECK_FALSE(parse_when(bad, now, &error));
        CHECK_THAT(error, Catch::Contains("is not"));
    }
}
