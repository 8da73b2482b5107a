#include "aggregate/container_groups.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

namespace diskwatch {

std::optional<ContainerGrouping> parse_container_grouping(std::string_view text)
{
    if (text == "container")
        return ContainerGrouping::container;
    if (text == "service")
        return ContainerGrouping::service;
    return std::nullopt;
}

std::string_view to_string(ContainerGrouping grouping)
{
    return grouping == ContainerGrouping::container ? "container" : "service";
}

namespace {

// The group a row belongs to; the prefixes keep a cgroup path from ever
// equalling a container id or a service name.
std::string group_of(const ReportRow &row, ContainerGrouping grouping)
{
    if (grouping == ContainerGrouping::service && !row.compose_service.empty())
        // A NUL cannot be in a label Docker accepts: project and service stay apart.
        return "s:" + row.compose_project + std::string(1, '\0') + row.compose_service;
    if (!row.container.empty())
        return "c:" + row.container;
    return "g:" + std::to_string(row.cgroup_id);
}

}  // namespace

std::string container_group_key(const ReportRow &row, ContainerGrouping grouping)
{
    return group_of(row, grouping) + std::string(1, '\0') + row.dev;
}

WriteReport group_by_container(const WriteReport &by_cgroup, ContainerGrouping grouping)
{
    WriteReport report = by_cgroup;
    report.rows.clear();
    report.grouping = std::string(to_string(grouping));
    std::map<std::pair<std::string, std::string>, size_t> index;  // (group, dev) -> row
    std::vector<std::set<std::string>> containers;
    std::vector<double> fastest;
    for (const auto &row : by_cgroup.rows) {
        const auto key = std::make_pair(group_of(row, grouping), row.dev);
        auto [it, fresh] = index.emplace(key, report.rows.size());
        if (fresh) {
            report.rows.push_back(row);
            containers.emplace_back();
            fastest.push_back(row.write_bps);
        } else {
            ReportRow &merged = report.rows[it->second];
            // The fastest row describes the group (as the largest writer does a cgroup's).
            const bool exited = merged.exited && row.exited;
            if (row.write_bps > fastest[it->second]) {
                ReportRow sums = merged;
                merged = row;
                add_counters(merged, sums);
                fastest[it->second] = row.write_bps;
            } else {
                add_counters(merged, row);
            }
            merged.exited = exited;
        }
        if (!row.container.empty())
            containers[it->second].insert(row.container);
    }
    for (size_t i = 0; i < report.rows.size(); ++i)
        report.rows[i].containers = containers[i].size();
    std::stable_sort(report.rows.begin(), report.rows.end(), [](const ReportRow &a, const ReportRow &b) {
        if (a.write_bps != b.write_bps)
            return a.write_bps > b.write_bps;
        if (a.growth_bps != b.growth_bps)
            return a.growth_bps > b.growth_bps;
        return a.total_bytes > b.total_bytes;
    });
    return report;
}

}  // namespace diskwatch
