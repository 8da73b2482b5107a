#include "recorder/report_window.h"

#include <algorithm>
#include <set>

namespace diskwatch {

std::string row_identity(const ReportRow &row, GroupBy by)
{
    switch (by) {
    case GroupBy::process:
        // A pid reused within the window is another process: its start tells.
        return std::to_string(row.pid) + "/" + std::to_string(row.start_boot_s) + "@" + std::to_string(row.kernel_dev);
    case GroupBy::cgroup:
        return std::to_string(row.cgroup_id) + "@" + std::to_string(row.kernel_dev);
    case GroupBy::mount:
        break;
    }
    return std::to_string(row.kernel_dev) + ":" + row.mount;
}

void ReportWindow::add(const WriteReport &report)
{
    if (refreshes_ == 0) {
        merged_ = report;
        merged_.rows.clear();
        merged_.mounts.clear();  // by mount point below
        merged_.interval_s = 0;
        start_ts_ = report.ts - report.interval_s;
    }
    ++refreshes_;
    merged_.interval_s += report.interval_s;
    merged_.ts = report.ts;
    merged_.drops = report.drops;
    merged_.source = report.source;
    for (const auto &row : report.rows) {
        const std::string id = row_identity(row, report.by);
        auto it = rows_.find(id);
        if (it == rows_.end())
            rows_.emplace(id, row);
        else
            it->second = followed_by(it->second, row, merged_.interval_s);
    }
    for (const auto &mount : report.mounts) {
        auto [it, fresh] = mounts_.try_emplace(mount.mount, mount);
        if (fresh)
            continue;
        MountReport later = mount;
        later.write_bytes += it->second.write_bytes;
        later.growth_bytes += it->second.growth_bytes;
        later.nospace_failures += it->second.nospace_failures;
        it->second = later;
    }
}

WriteReport ReportWindow::take(size_t keep)
{
    WriteReport out = std::move(merged_);
    const double interval = out.interval_s;
    std::vector<ReportRow> rows;
    rows.reserve(rows_.size());
    for (auto &[id, row] : rows_) {
        row.write_bps = interval > 0 ? static_cast<double>(row.write_bytes) / interval : 0;
        row.growth_bps = interval > 0 ? static_cast<double>(row.growth_bytes) / interval : 0;
        rows.push_back(std::move(row));
    }
    std::set<size_t> kept;
    auto keep_top = [&](auto better) {
        std::vector<size_t> order(rows.size());
        for (size_t i = 0; i < order.size(); ++i)
            order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return better(rows[a], rows[b]); });
        for (size_t i = 0; i < order.size() && i < keep; ++i)
            kept.insert(order[i]);
    };
    keep_top([](const ReportRow &a, const ReportRow &b) { return a.write_bytes > b.write_bytes; });
    keep_top([](const ReportRow &a, const ReportRow &b) { return a.growth_bytes > b.growth_bytes; });
    keep_top([](const ReportRow &a, const ReportRow &b) { return a.nospace_failures > b.nospace_failures; });
    for (size_t i = 0; i < rows.size(); ++i)
        if (kept.count(i))
            out.rows.push_back(std::move(rows[i]));
    std::stable_sort(out.rows.begin(), out.rows.end(), [](const ReportRow &a, const ReportRow &b) {
        if (a.write_bps != b.write_bps)
            return a.write_bps > b.write_bps;
        return a.growth_bps > b.growth_bps;
    });
    for (auto &[name, mount] : mounts_) {
        mount.write_bps = interval > 0 ? static_cast<double>(mount.write_bytes) / interval : 0;
        mount.growth_bps = interval > 0 ? static_cast<double>(mount.growth_bytes) / interval : 0;
        out.mounts.push_back(std::move(mount));
    }
    rows_.clear();
    mounts_.clear();
    refreshes_ = 0;
    merged_ = WriteReport{};
    return out;
}

}  // namespace diskwatch
