// top attached to an agent: the agent's cumulative rows -> top's intervals
// (aggregate/snapshot_delta.h), the rate history sparkline, the agent's marks.
#include <catch2/catch.hpp>

#include "aggregate/snapshot_delta.h"
#include "control/agent_feed.h"
#include "aggregate/container_groups.h"
#include "views/rate_history.h"

using namespace diskwatch;

namespace {

ReportRow writer(uint32_t pid, const std::string &dev, uint64_t total, uint64_t growth = 0)
{
    ReportRow row;
    row.pid = pid;
    row.comm = "w" + std::to_string(pid);
    row.dev = dev;
    row.mount = "/m" + dev;
    row.cgroup_id = 10 + pid % 2;
    row.total_bytes = total;
    row.total_write_calls = total / 4096;
    row.total_growth_bytes = growth;
    return row;
}

WriteReport cumulative(std::vector<ReportRow> rows, GroupBy by = GroupBy::process)
{
    WriteReport report;
    report.by = by;
    report.source = ReportSource::agent;
    report.rows = std::move(rows);
    MountReport mount;
    mount.mount = "/m8:1";
    mount.dev = "8:1";
    mount.write_bytes = 999;  // the agent's own interval: replaced by top's
    report.mounts.push_back(mount);
    return report;
}

}  // namespace

TEST_CASE("two snapshots make an interval: bytes since the previous one, totals since top started", "[attach]")
{
    SnapshotDelta delta;
    // Before top started, pid 1 had written 1 MiB: not top's to count.
    WriteReport first = delta.next(cumulative({writer(1, "8:1", 1 << 20)}), 100.0, false);
    CHECK(first.rows.empty());
    CHECK(first.mounts.at(0).write_bytes == 0);
    CHECK(delta.has_baseline(GroupBy::process));
    CHECK_FALSE(delta.has_baseline(GroupBy::cgroup));

    WriteReport second = delta.next(cumulative({writer(1, "8:1", (1 << 20) + 8192, 4096), writer(2, "8:1", 4096)}), 102.0, false);
    REQUIRE(second.rows.size() == 2);
    CHECK(second.interval_s == 2.0);
    CHECK(second.source == ReportSource::agent);
    CHECK(second.rows[0].pid == 1);  // sorted by rate
    CHECK(second.rows[0].write_bytes == 8192);
    CHECK(second.rows[0].write_bps == 4096.0);
    CHECK(second.rows[0].total_bytes == 8192);
    CHECK(second.rows[0].growth_bytes == 4096);
    CHECK(second.rows[0].write_calls == 2);
    CHECK(second.rows[1].pid == 2);
    CHECK(second.rows[1].write_bytes == 4096);
    CHECK(second.mounts.at(0).write_bytes == 8192 + 4096);
    CHECK(second.mounts.at(0).total_bytes == 8192 + 4096);

    // pid 2 idle: gone unless accumulated; pid 1 wrote again.
    WriteReport third = delta.next(cumulative({writer(1, "8:1", (1 << 20) + 12288), writer(2, "8:1", 4096)}), 103.0, false);
    REQUIRE(third.rows.size() == 1);
    CHECK(third.rows[0].write_bytes == 4096);
    CHECK(third.rows[0].total_bytes == 12288);
    WriteReport fourth = delta.next(cumulative({writer(1, "8:1", (1 << 20) + 12288), writer(2, "8:1", 4096)}), 104.0, true);
    REQUIRE(fourth.rows.size() == 2);  // -a: both wrote since top started
    CHECK(fourth.rows[0].write_bytes == 0);
}

TEST_CASE("a total that went down is a new writer under an old key: counted from zero", "[attach]")
{
    SnapshotDelta delta;
    delta.next(cumulative({writer(7, "8:1", 50000)}), 1.0, false);
    // pid 7 exited, the agent forgot it, a new pid 7 wrote 3000 bytes.
    WriteReport report = delta.next(cumulative({writer(7, "8:1", 3000)}), 2.0, false);
    REQUIRE(report.rows.size() == 1);
    CHECK(report.rows[0].write_bytes == 3000);
    CHECK(report.rows[0].total_bytes == 3000);
}

TEST_CASE("each grouping keeps its own baseline and previous snapshot", "[attach]")
{
    SnapshotDelta delta;
    delta.next(cumulative({writer(1, "8:1", 100)}, GroupBy::process), 1.0, false);
    delta.next(cumulative({writer(1, "8:1", 100)}, GroupBy::mount), 1.0, false);
    WriteReport by_mount = delta.next(cumulative({writer(1, "8:1", 600)}, GroupBy::mount), 3.0, false);
    REQUIRE(by_mount.rows.size() == 1);
    CHECK(by_mount.rows[0].write_bytes == 500);
    WriteReport by_process = delta.next(cumulative({writer(1, "8:1", 900)}, GroupBy::process), 4.0, false);
    REQUIRE(by_process.rows.size() == 1);
    CHECK(by_process.rows[0].write_bytes == 800);
    CHECK(by_process.interval_s == 3.0);
}

TEST_CASE("the agent's actions mark rows: kill over throttle over offender, cgroups cover their children", "[attach]")
{
    std::vector<ReportRow> rows(3);
    rows[0].pid = 10, rows[0].cgroup = "/jobs/a";
    rows[1].pid = 11, rows[1].cgroup = "/jobs/a/sub";
    rows[2].pid = 12, rows[2].cgroup = "/jobs/ab";
    const auto acted_on = nlohmann::json::parse(R"([
        {"target":"cgroup:/jobs/a","rule":"r","action":"throttle"},
        {"target":"process:11","rule":"r","action":"kill"},
        {"target":"process:12","rule":"r","action":"offender"},
        {"target":"garbage"}, 42])");
    AgentFeed::mark_acted_on(rows, acted_on);
    CHECK(rows[0].agent_action == "throttle");
    CHECK(rows[1].agent_action == "kill");
    CHECK(rows[2].agent_action == "offender");  // /jobs/ab is not under /jobs/a
}

TEST_CASE("the rate history draws each row's last refreshes from numbers only", "[top][sparkline]")
{
    RateHistory history(6);
    auto report = [](std::vector<std::pair<uint32_t, double>> rates) {
        WriteReport r;
        for (auto [pid, bps] : rates) {
            ReportRow row;
            row.pid = pid;
            row.dev = "8:1";
            row.comm = "\x1b]0;pwned\x07";  // never reaches the sparkline
            row.write_bps = bps;
            r.rows.push_back(row);
        }
        return r;
    };
    history.record(report({{1, 100}}));
    history.record(report({{1, 800}}));
    history.record(report({{1, 400}, {2, 5}}));
    history.record(report({{2, 5}}));  // pid 1 idle
    ReportRow one;
    one.pid = 1;
    one.dev = "8:1";
    const std::string line = history.sparkline(one, GroupBy::process);
    REQUIRE(line.size() == 6);
    CHECK(line.substr(0, 2) == "  ");  // before its history starts
    CHECK(line[3] == '@');             // its peak
    CHECK(line[5] == '_');             // idle now
    CHECK(line[2] != '@');
    for (char c : line)
        CHECK((c == ' ' || std::string("_.:-=+*#@").find(c) != std::string::npos));
    // All idle for the whole window: forgotten.
    for (int i = 0; i < 6; ++i)
        history.record(report({{2, 5}}));
    CHECK(history.sparkline(one, GroupBy::process) == std::string(6, ' '));
    CHECK(history.rows_tracked() == 1);
    // Another grouping starts over.
    WriteReport by_mount = report({{1, 1}});
    by_mount.by = GroupBy::mount;
    history.record(by_mount);
    CHECK(history.rows_tracked() == 1);
    CHECK(history.sparkline(one, GroupBy::process) == std::string(6, ' '));
}

TEST_CASE("the rate history keys a container's merged row by the container, whichever member is fastest",
          "[top][sparkline][containers]")
{
    RateHistory history(4);
    // Two processes of one container, in two cgroups; the fastest changes.
    auto report = [](double first, double second) {
        WriteReport by_cgroup;
        by_cgroup.by = GroupBy::cgroup;
        for (auto [cgroup_id, bps] : {std::pair<uint64_t, double>{11, first}, {12, second}}) {
            ReportRow row;
            row.cgroup_id = cgroup_id;
            row.pid = static_cast<uint32_t>(cgroup_id);
            row.dev = "8:1";
            row.container = std::string(64, 'a');
            row.write_bps = bps;
            by_cgroup.rows.push_back(row);
        }
        return group_by_container(by_cgroup, ContainerGrouping::container);
    };
    for (auto [first, second] : {std::pair<double, double>{100, 1}, {1, 300}, {200, 1}}) {
        const WriteReport merged = report(first, second);
        REQUIRE(merged.rows.size() == 1);
        history.record(merged);
    }
    CHECK(history.rows_tracked() == 1);  // one container, one history
    const ReportRow row = report(200, 1).rows.front();
    // 101, 301, 201: the peak in the middle, one history across the changes of fastest member.
    CHECK(history.sparkline(row, GroupBy::cgroup) == " -@*");
    // By cgroup again: another grouping, the history starts over.
    WriteReport by_cgroup;
    by_cgroup.by = GroupBy::cgroup;
    by_cgroup.rows = report(1, 1).rows;
    history.record(by_cgroup);
    CHECK(history.sparkline(by_cgroup.rows.front(), GroupBy::cgroup) == "   @");
}

TEST_CASE("ENOSPC failures between two snapshots: the interval's, since top started, and on the mount", "[attach][nospace]")
{
    SnapshotDelta delta;
    auto refused = [](uint32_t pid, uint64_t total_failures) {
        ReportRow row = writer(pid, "8:1", 0);  // no byte ever landed
        row.total_nospace_failures = total_failures;
        return row;
    };
    delta.next(cumulative({refused(1, 100), writer(2, "8:1", 4096)}), 100.0, false);
    WriteReport second = delta.next(cumulative({refused(1, 130), writer(2, "8:1", 4096)}), 101.0, false);
    // Only pid 1 is active: it wrote nothing, but kept failing on the full disk.
    REQUIRE(second.rows.size() == 1);
    CHECK(second.rows[0].pid == 1);
    CHECK(second.rows[0].nospace_failures == 30);
    CHECK(second.rows[0].total_nospace_failures == 30);
    CHECK(second.mounts.at(0).nospace_failures == 30);
    CHECK(second.mounts.at(0).total_nospace_failures == 30);
    WriteReport third = delta.next(cumulative({refused(1, 131), writer(2, "8:1", 4096)}), 102.0, false);
    REQUIRE(third.rows.size() == 1);
    CHECK(third.rows[0].nospace_failures == 1);
    CHECK(third.rows[0].total_nospace_failures == 31);
}
