// Successive refreshes of one grouping merged into one report: a window of
// the flight recorder (10 seconds, 5 minutes). Each row is summed over the
// window by its identity (the process, the cgroup, the mount on its device);
// each mount keeps its latest usage and the window's bytes.
#pragma once

#include <map>
#include <string>

#include "aggregate/write_report.h"

namespace diskwatch {

class ReportWindow {
public:
    void add(const WriteReport &report);
    bool empty() const { return refreshes_ == 0; }
    double start_ts() const { return start_ts_; }
    // The window as one report (rows sorted as a refresh's are), then empty.
    // Kept: the `keep` rows that wrote the most, the `keep` whose files grew
    // the most, and the `keep` with the most writes refused for want of space.
    WriteReport take(size_t keep);

private:
    WriteReport merged_;  // rows unused: by identity below
    std::map<std::string, ReportRow> rows_;
    std::map<std::string, MountReport> mounts_;
    double start_ts_ = 0;
    unsigned refreshes_ = 0;
};

// The identity a row is summed by across refreshes.
std::string row_identity(const ReportRow &row, GroupBy by);

}  // namespace diskwatch
