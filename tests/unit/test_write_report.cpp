#include <catch2/catch.hpp>

#include "aggregate/write_report.h"

using namespace diskwatch;

namespace {

WriterDelta delta(uint32_t tgid, uint64_t cgroup, uint32_t dev, uint64_t interval, uint64_t total, bool exited = false)
{
    WriterDelta d;
    d.key = {cgroup, tgid, dev};
    d.interval.write_bytes = interval;
    d.total.write_bytes = total;
    d.process_exited = exited;
    return d;
}

}  // namespace

TEST_CASE("grouping by process sums a process's cgroups on one device", "[report]")
{
    // pid 1 wrote from two cgroups (it moved) to dev 7, and to dev 8.
    auto groups = group_writes({delta(1, 100, 7, 10, 10), delta(1, 200, 7, 30, 30), delta(1, 100, 8, 5, 5)},
                               GroupBy::process);
    REQUIRE(groups.size() == 2);
    const auto &on7 = groups[0].key.dev == 7 ? groups[0] : groups[1];
    CHECK(on7.interval.write_bytes == 40);
    CHECK(on7.key.tgid == 1);
    CHECK(on7.processes == 1);
}

TEST_CASE("grouping by cgroup counts short-lived processes together and names the largest", "[report]")
{
    auto groups = group_writes({delta(1, 100, 7, 10, 10, true), delta(2, 100, 7, 50, 50, true),
                                delta(3, 100, 7, 20, 20, true), delta(4, 999, 7, 1, 1)},
                               GroupBy::cgroup);
    REQUIRE(groups.size() == 2);
    const auto &ours = groups[0].key.cgroup_id == 100 ? groups[0] : groups[1];
    CHECK(ours.interval.write_bytes == 80);
    CHECK(ours.processes == 3);
    CHECK(ours.key.tgid == 2);
    CHECK(ours.all_exited);
}

TEST_CASE("grouping by mount sums everything on a device", "[report]")
{
    auto groups =
        group_writes({delta(1, 100, 7, 10, 100), delta(2, 200, 7, 0, 900), delta(3, 300, 8, 1, 1)}, GroupBy::mount);
    REQUIRE(groups.size() == 2);
    const auto &on7 = groups[0].key.dev == 7 ? groups[0] : groups[1];
    CHECK(on7.interval.write_bytes == 10);
    CHECK(on7.total.write_bytes == 1000);
    CHECK(on7.key.tgid == 1);  // the interval's largest writer, not the all-time one
    CHECK_FALSE(on7.all_exited);
}

TEST_CASE("group-by names parse and print", "[report]")
{
    CHECK(parse_group_by("cgroup") == GroupBy::cgroup);
    CHECK_FALSE(parse_group_by("file").has_value());
    CHECK(to_string(GroupBy::mount) == "mount");
}

TEST_CASE("growth and the files written ride along with the grouping", "[aggregate][growth]")
{
    std::vector<WriterDelta> deltas(2);
    deltas[0].key = {10, 100, 7};
    deltas[0].interval = {4096, 1, 0};
    deltas[0].total = {4096, 1, 0};
    deltas[0].last_inodes = {12};
    deltas[1].key = {10, 200, 7};
    deltas[1].interval = {0, 0, 1 << 20};  // ftruncate: growth, no bytes
    deltas[1].total = {0, 0, 1 << 20};
    deltas[1].last_inodes = {13};
    auto by_mount = group_writes(deltas, GroupBy::mount);
    REQUIRE(by_mount.size() == 1);
    CHECK(by_mount[0].interval.write_bytes == 4096);
    CHECK(by_mount[0].interval.growth_bytes == 1 << 20);
    // The representative is the largest writer by bytes plus growth.
    CHECK(by_mount[0].key.tgid == 200);
    CHECK(by_mount[0].last_inodes == std::vector<uint64_t>{13});
    auto by_process = group_writes(deltas, GroupBy::process);
    REQUIRE(by_process.size() == 2);
}

TEST_CASE("ENOSPC failures sum per group, and merged rows add them", "[report][nospace]")
{
    auto refused = [](uint32_t tgid, uint32_t dev, uint64_t interval, uint64_t total) {
        WriterDelta d = delta(tgid, 100, dev, 0, 0);
        d.interval.nospace_failures = interval;
        d.total.nospace_failures = total;
        return d;
    };
    auto groups = group_writes({refused(1, 7, 3, 10), refused(2, 7, 4, 4), delta(3, 100, 7, 4096, 4096)}, GroupBy::mount);
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].interval.nospace_failures == 7);
    CHECK(groups[0].total.nospace_failures == 14);
    CHECK(groups[0].interval.write_bytes == 4096);

    ReportRow a, b;
    a.nospace_failures = 2;
    a.total_nospace_failures = 20;
    b.nospace_failures = 3;
    b.total_nospace_failures = 30;
    add_counters(a, b);
    CHECK(a.nospace_failures == 5);
    CHECK(a.total_nospace_failures == 50);
    const ReportRow described = with_counters(b, a);
    CHECK(described.total_nospace_failures == 50);
}
