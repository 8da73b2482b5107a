// From an agent's cumulative rows to `top`'s interval rows. The agent's
// control socket answers `snapshot` with every group that wrote since the agent
// started and its totals; `top` attached to it diffs two snapshots the way the
// ledger diffs two reads of the kernel map: interval = now - previous, total =
// now - at top's start.
#pragma once

#include <array>
#include <string>
#include <unordered_map>

#include "aggregate/write_report.h"

namespace diskwatch {

class SnapshotDelta {
public:
    // `cumulative`: a snapshot's rows (totals since the agent started), taken
    // at unix time `ts`. The first call for a grouping only sets its baseline:
    // it returns no rows and interval 0. Afterwards: the rows that wrote or grew
    // since the previous snapshot of this grouping (or every row with bytes
    // since the baseline, with include_idle), their mounts' byte counts summed
    // from them, sorted as top sorts.
    WriteReport next(const WriteReport &cumulative, double ts, bool include_idle);
    bool has_baseline(GroupBy by) const { return state_[static_cast<size_t>(by)].started; }

    // The row's key within its grouping: (pid, dev), (cgroup id, dev) or dev.
    static std::string group_key(const ReportRow &row, GroupBy by);

private:
    struct Totals {
        uint64_t write_bytes = 0;
        uint64_t write_calls = 0;
        uint64_t growth_bytes = 0;
        uint64_t nospace_failures = 0;
    };
    struct Grouping {
        bool started = false;
        double previous_ts = 0;
        std::unordered_map<std::string, Totals> baseline;  // at top's start
        std::unordered_map<std::string, Totals> previous;  // at the previous snapshot
    };
    std::array<Grouping, 3> state_;
};

}  // namespace diskwatch
