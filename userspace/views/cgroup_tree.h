// The live view's tree of cgroups (`T`, like systemd-cgtop): the cgroup
// grouping's rows arranged by the hierarchy, each cgroup with the totals of
// its whole subtree, and the cgroups between them that wrote nothing
// themselves shown too, so that a slice adds up its services.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "aggregate/write_report.h"

namespace diskwatch {

struct TreeLine {
    // The cgroup's path and the row drawn for it: counters summed over its
    // subtree and over the mounts it wrote to; pid, comm and files those of
    // its own largest writer (pid 0, no comm, for a cgroup that wrote nothing
    // itself).
    ReportRow row;
    size_t depth = 0;     // 0: the root cgroup "/"
    std::string name;     // the last component ("/" for the root)
};

// Pure. `by_cgroup`: rows of the cgroup grouping (one per cgroup and mount).
// Depth first; siblings ordered by `first` (a strict weak order on rows,
// the view's sort), ties by name. Cgroups deeper than 32 levels are folded
// into their 32nd ancestor.
std::vector<TreeLine> cgroup_tree(const std::vector<ReportRow> &by_cgroup,
                                  const std::function<bool(const ReportRow &, const ReportRow &)> &first);

}  // namespace diskwatch
