// Each row's write rate over the last refreshes, for the live view's
// sparkline column. Keyed by the row's group key (never printed: a sparkline
// is drawn from numbers only, so a hostile name cannot reach the terminal
// through it).
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>

#include "aggregate/write_report.h"

namespace diskwatch {

// WriteReport::grouping of the live view's cgroup tree lines, recorded here
// so that each subtree keeps its history.
inline constexpr const char *kTreeGrouping = "tree";

class RateHistory {
public:
    explicit RateHistory(size_t length = 12) : length_(length) {}

    // One refresh: every row's write rate is appended to its history; rows
    // with a history that are not in the report (idle) get a 0. Histories that
    // are all zeros are forgotten. A change of grouping starts over.
    void record(const WriteReport &report);

    // `length` characters, oldest first, right-aligned (a new row has a short
    // history): '_' for an idle refresh, then . : - = + * # @ up to the row's
    // own peak in the window. Spaces before the history starts. `row` is
    // one of the last recorded report's rows.
    std::string sparkline(const ReportRow &row, GroupBy by) const;

    size_t length() const { return length_; }
    size_t rows_tracked() const { return history_.size(); }

private:
    // The row's key in the last recorded report's grouping.
    std::string key(const ReportRow &row) const;

    size_t length_;
    GroupBy by_ = GroupBy::process;
    std::string grouping_;  // WriteReport::grouping: container rows are keyed by container
    bool started_ = false;
    std::unordered_map<std::string, std::deque<double>> history_;
};

}  // namespace diskwatch
