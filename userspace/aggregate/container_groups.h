// top's groupings by container and by Compose service: the cgroup grouping's
// rows merged by what the container runtime calls them. Done on rows, after
// the feed, so that top attached to an agent (which serves process, cgroup
// and mount groupings over its control socket) groups the same way, with no
// change to the control protocol.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "aggregate/write_report.h"

namespace diskwatch {

enum class ContainerGrouping {
    container,  // one row per (container, mount); rows of no container stay per cgroup
    service,    // one row per (Compose project/service, mount); other containers per container
};
std::optional<ContainerGrouping> parse_container_grouping(std::string_view text);
std::string_view to_string(ContainerGrouping grouping);

// Pure. `by_cgroup`: a report grouped by cgroup. The merged rows sum the
// counters (bytes, rates, calls, processes) and are otherwise described by
// their fastest row (its pid, cgroup, files); `containers` counts the
// containers merged. Sorted as every report is.
WriteReport group_by_container(const WriteReport &by_cgroup, ContainerGrouping grouping);

// The key of the merged row `row` belongs to (its group and device): stable
// from one refresh to the next, whichever member is the fastest. The live
// view keys each row's history by it.
std::string container_group_key(const ReportRow &row, ContainerGrouping grouping);

}  // namespace diskwatch
