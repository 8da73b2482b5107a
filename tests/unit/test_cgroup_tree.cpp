// The live view's cgroup tree (views/cgroup_tree.h): subtree totals, the
// cgroups between that wrote nothing themselves, siblings in the view's order.
#include <catch2/catch.hpp>

#include "views/cgroup_tree.h"

using namespace diskwatch;

namespace {

ReportRow row(const std::string &cgroup, const std::string &dev, double bps, uint32_t pid, const std::string &comm)
{
    ReportRow r;
    r.cgroup = cgroup;
    r.dev = dev;
    r.write_bps = bps;
    r.total_bytes = static_cast<uint64_t>(bps * 10);
    r.pid = pid;
    r.comm = comm;
    r.processes = 1;
    return r;
}

bool by_rate(const ReportRow &a, const ReportRow &b) { return a.write_bps > b.write_bps; }

}  // namespace

TEST_CASE("the cgroup tree sums each subtree, shows the cgroups between, and orders siblings by the sort",
          "[top][tree]")
{
    const std::vector<ReportRow> rows = {
        row("/user.slice/user-1000.slice/session-1.scope", "8:1", 10, 300, "vim"),
        row("/system.slice/b.service", "8:1", 50, 201, "b"),
        row("/system.slice/a.service", "8:1", 100, 200, "a"),
        row("/system.slice/b.service", "8:2", 30, 202, "b2"),
        row("/", "8:1", 5, 1, "init"),
    };
    const auto lines = cgroup_tree(rows, by_rate);
    std::vector<std::string> shape;
    for (const auto &line : lines)
        shape.push_back(std::string(2 * line.depth, ' ') + line.name);
    CHECK(shape == std::vector<std::string>{"/", "  system.slice", "    a.service", "    b.service", "  user.slice",
                                            "    user-1000.slice", "      session-1.scope"});
    REQUIRE(lines.size() == 7);
    CHECK(lines[0].row.write_bps == 195);         // everything
    CHECK(lines[0].row.pid == 1);                 // the root's own writer describes it
    CHECK(lines[1].row.write_bps == 180);         // a + b on both disks
    CHECK(lines[1].row.pid == 0);                 // system.slice wrote nothing itself
    CHECK(lines[1].row.comm.empty());
    CHECK(lines[1].row.cgroup == "/system.slice");
    CHECK(lines[3].row.write_bps == 80);          // b.service: both its disks
    CHECK(lines[3].row.pid == 201);               // its largest row
    CHECK(lines[3].row.processes == 2);
    CHECK(lines[3].row.cgroup == "/system.slice/b.service");
    CHECK(lines[6].row.total_bytes == 100);
    CHECK(lines[4].row.cgroup == "/user.slice");

    // Reversed order: the quietest sibling first.
    const auto reversed = cgroup_tree(rows, [](const ReportRow &a, const ReportRow &b) { return by_rate(b, a); });
    CHECK(reversed[1].name == "user.slice");
    CHECK(cgroup_tree({}, by_rate).empty());
}

TEST_CASE("the cgroup tree folds what is deeper than 32 levels into its 32nd ancestor", "[top][tree]")
{
    std::string deep;
    for (int i = 0; i < 40; ++i)
        deep += "/d" + std::to_string(i);
    const auto lines = cgroup_tree({row(deep, "8:1", 7, 9, "deep")}, by_rate);
    REQUIRE(lines.size() == 33);  // the root and 32 levels
    CHECK(lines.back().depth == 32);
    CHECK(lines.back().row.write_bps == 7);
    CHECK(lines.back().row.pid == 9);
}
