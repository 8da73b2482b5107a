#include "views/rate_history.h"

#include <algorithm>
#include <unordered_set>

#include "aggregate/container_groups.h"
#include "aggregate/snapshot_delta.h"

namespace diskwatch {

std::string RateHistory::key(const ReportRow &row) const
{
    // A merged row is described by its fastest member, whose pid and cgroup
    // change from one refresh to the next: its group is what stays.
    if (grouping_ == kTreeGrouping)
        return row.cgroup;  // a tree line is its cgroup path (views/cgroup_tree.h)
    if (auto containers = parse_container_grouping(grouping_))
        return container_group_key(row, *containers);
    return SnapshotDelta::group_key(row, by_);
}

void RateHistory::record(const WriteReport &report)
{
    if (!started_ || report.by != by_ || report.grouping != grouping_) {
        history_.clear();
        by_ = report.by;
        grouping_ = report.grouping;
        started_ = true;
    }
    std::unordered_set<std::string> seen;
    for (const auto &row : report.rows) {
        const std::string row_key = key(row);
        if (!seen.insert(row_key).second)
            continue;
        auto &rates = history_[row_key];
        rates.push_back(row.write_bps);
        while (rates.size() > length_)
            rates.pop_front();
    }
    for (auto it = history_.begin(); it != history_.end();) {
        auto &rates = it->second;
        if (!seen.count(it->first)) {
            rates.push_back(0);
            while (rates.size() > length_)
                rates.pop_front();
        }
        const bool idle = std::all_of(rates.begin(), rates.end(), [](double rate) { return rate <= 0; });
        it = idle ? history_.erase(it) : std::next(it);
    }
}

std::string RateHistory::sparkline(const ReportRow &row, GroupBy by) const
{
    static constexpr char kLevels[] = ".:-=+*#@";
    static constexpr size_t kLevelCount = sizeof(kLevels) - 1;
    std::string line(length_, ' ');
    if (by != by_)
        return line;
    auto it = history_.find(key(row));
    if (it == history_.end())
        return line;
    const auto &rates = it->second;
    const double peak = *std::max_element(rates.begin(), rates.end());
    const size_t offset = length_ - rates.size();
    for (size_t i = 0; i < rates.size(); ++i) {
        if (rates[i] <= 0 || peak <= 0) {
            line[offset + i] = '_';
            continue;
        }
        auto level = static_cast<size_t>(rates[i] / peak * static_cast<double>(kLevelCount));
        line[offset + i] = kLevels[std::min(level, kLevelCount - 1)];
    }
    return line;
}

}  // namespace diskwatch
