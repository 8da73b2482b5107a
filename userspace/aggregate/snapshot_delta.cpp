#include "aggregate/snapshot_delta.h"

#include <algorithm>

namespace diskwatch {

namespace {

// A total smaller than the one remembered is a different writer under the same
// key (a recycled pid, a key the agent forgot and saw again): it starts from 0.
uint64_t since(uint64_t now, uint64_t then)
{
    return now >= then ? now - then : now;
}

MountReport clear_bytes(MountReport mount)
{
    mount.write_bytes = mount.total_bytes = mount.growth_bytes = 0;
    mount.nospace_failures = mount.total_nospace_failures = 0;
    mount.write_bps = mount.growth_bps = 0;
    return mount;
}

}  // namespace

std::string SnapshotDelta::group_key(const ReportRow &row, GroupBy by)
{
    switch (by) {
    case GroupBy::process:
        return std::to_string(row.pid) + "/" + row.dev;
    case GroupBy::cgroup:
        return std::to_string(row.cgroup_id) + "/" + row.dev;
    case GroupBy::mount:
        return row.dev;
    }
    return row.dev;
}

WriteReport SnapshotDelta::next(const WriteReport &cumulative, double ts, bool include_idle)
{
    Grouping &grouping = state_[static_cast<size_t>(cumulative.by)];
    WriteReport report;
    report.ts = ts;
    report.by = cumulative.by;
    report.source = cumulative.source;
    report.drops = cumulative.drops;
    report.mounts = cumulative.mounts;
    std::unordered_map<std::string, Totals> now;
    for (const auto &row : cumulative.rows)
        now[group_key(row, cumulative.by)] = {row.total_bytes, row.total_write_calls, row.total_growth_bytes,
                                              row.total_nospace_failures};
    if (!grouping.started) {
        grouping.started = true;
        grouping.baseline = now;
        grouping.previous = now;
        grouping.previous_ts = ts;
        for (auto &mount : report.mounts)
            mount = clear_bytes(mount);
        return report;
    }
    report.interval_s = std::max(0.0, ts - grouping.previous_ts);
    auto rate = [&](uint64_t bytes) { return report.interval_s > 0 ? static_cast<double>(bytes) / report.interval_s : 0; };
    struct MountBytes {
        uint64_t interval = 0, total = 0, growth = 0, nospace = 0, total_nospace = 0;
    };
    std::unordered_map<std::string, MountBytes> by_dev;
    for (const auto &cumulative_row : cumulative.rows) {
        const std::string key = group_key(cumulative_row, cumulative.by);
        const Totals &current = now[key];
        Totals before, at_start;
        if (auto it = grouping.previous.find(key); it != grouping.previous.end())
            before = it->second;
        if (auto it = grouping.baseline.find(key); it != grouping.baseline.end())
            at_start = it->second;
        ReportRow row = cumulative_row;
        row.write_bytes = since(current.write_bytes, before.write_bytes);
        row.write_calls = since(current.write_calls, before.write_calls);
        row.growth_bytes = since(current.growth_bytes, before.growth_bytes);
        row.total_bytes = since(current.write_bytes, at_start.write_bytes);
        row.total_write_calls = since(current.write_calls, at_start.write_calls);
        row.total_growth_bytes = since(current.growth_bytes, at_start.growth_bytes);
        row.nospace_failures = since(current.nospace_failures, before.nospace_failures);
        row.total_nospace_failures = since(current.nospace_failures, at_start.nospace_failures);
        row.write_bps = rate(row.write_bytes);
        row.growth_bps = rate(row.growth_bytes);
        MountBytes &mount = by_dev[row.dev];
        mount.interval += row.write_bytes;
        mount.total += row.total_bytes;
        mount.growth += row.growth_bytes;
        mount.nospace += row.nospace_failures;
        mount.total_nospace += row.total_nospace_failures;
        // As the monitor's rows: a writer that only fails on a full disk is shown.
        const bool active = row.write_bytes > 0 || row.growth_bytes > 0 || row.nospace_failures > 0;
        const bool ever = row.total_bytes > 0 || row.total_growth_bytes > 0 || row.total_nospace_failures > 0;
        if (active || (include_idle && ever))
            report.rows.push_back(std::move(row));
    }
    for (auto &mount : report.mounts) {
        const MountBytes bytes = by_dev.count(mount.dev) ? by_dev[mount.dev] : MountBytes {};
        mount.write_bytes = bytes.interval;
        mount.total_bytes = bytes.total;
        mount.growth_bytes = bytes.growth;
        mount.nospace_failures = bytes.nospace;
        mount.total_nospace_failures = bytes.total_nospace;
        mount.write_bps = rate(bytes.interval);
        mount.growth_bps = rate(bytes.growth);
    }
    std::stable_sort(report.rows.begin(), report.rows.end(), [](const ReportRow &a, const ReportRow &b) {
        if (a.write_bps != b.write_bps)
            return a.write_bps > b.write_bps;
        if (a.growth_bps != b.growth_bps)
            return a.growth_bps > b.growth_bps;
        return a.total_bytes > b.total_bytes;
    });
    grouping.previous = std::move(now);
    grouping.previous_ts = ts;
    return report;
}

}  // namespace diskwatch
