// One refresh of the monitor, grouped the way the user asked: the data model
// that every view (text table, JSON, ncurses) renders.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aggregate/writer_ledger.h"
#include "vocabulary/drop_reasons.h"
#include "resolve/open_files.h"

namespace diskwatch {

enum class GroupBy { process, cgroup, mount };
std::optional<GroupBy> parse_group_by(std::string_view text);
std::string_view to_string(GroupBy by);

// Deltas summed per group. The row key is (tgid, dev) by process,
// (cgroup, dev) by cgroup, dev by mount. The other fields describe the
// group's largest writer in this interval (by total when the interval is idle).
struct GroupedWrites {
    WriterKey key;  // fields outside the grouping are the largest writer's
    WriterCounts interval;
    WriterCounts total;
    size_t processes = 0;      // distinct tgids in the group
    bool all_exited = false;   // every process of the group has exited
    std::vector<uint64_t> last_inodes;  // files the representative process wrote last
};

std::vector<GroupedWrites> group_writes(const std::vector<WriterDelta> &deltas, GroupBy by);

struct ReportRow {
    uint32_t pid = 0;
    std::string comm;
    std::string exe;
    uint32_t uid = 0;
    double start_boot_s = 0;  // when pid's process started, as read when first seen (0: unknown)
    bool exited = false;
    size_t processes = 0;
    uint64_t cgroup_id = 0;
    std::string cgroup;  // path under the cgroup v2 root; empty when unknown
    std::string mount;   // mount point; empty when the device has none here
    std::string dev;     // "major:minor"
    uint32_t kernel_dev = 0;
    std::string fstype;
    uint64_t write_bytes = 0;  // in this refresh interval
    double write_bps = 0;
    uint64_t write_calls = 0;
    uint64_t total_write_calls = 0;
    uint64_t total_bytes = 0;  // since the monitor started
    uint64_t growth_bytes = 0;  // how much the files it wrote grew in this interval
    double growth_bps = 0;
    uint64_t total_growth_bytes = 0;
    // Write-path calls that failed with ENOSPC or EDQUOT: the disk (or the
    // writer's quota) was full (in this interval, and since the monitor started).
    uint64_t nospace_failures = 0;
    uint64_t total_nospace_failures = 0;
    std::string unit;            // systemd unit named by the cgroup path; empty when none
    std::string container;       // container id (64 hex); empty when none
    std::string container_name;  // the runtime's name for it, from its state on disk; empty when unknown
    std::string container_runtime;
    std::string container_image;  // what the runtime says it was started from (resolve/containers.h)
    std::string container_image_id;  // "sha256:..." (Docker); empty when unknown
    std::string compose_project;  // Docker Compose labels; empty when none
    std::string compose_service;
    // top --by container|service: how many containers the row merges (0 otherwise).
    size_t containers = 0;
    std::vector<WrittenFile> files;  // the files it writes (resolved for the top rows only)
    // What a running agent is doing to this row's process or cgroup: "throttle",
    // "kill", "offender" (a rule holds, no action: dry run, protected); empty
    // when nothing, or when top runs without an agent.
    std::string agent_action;
};

// A row's counters (bytes, rates, calls, growth, processes): what rows merged
// into one group sum; the rest describes the group by one of its rows.
void add_counters(ReportRow &into, const ReportRow &from);
// `describing`'s row with `counters`' counters: the group described by one
// row, its numbers the group's.
ReportRow with_counters(ReportRow describing, const ReportRow &counters);
// Two successive intervals of one row as one (the flight recorder's windows):
// `later` as it describes the row, with totals as of then, and the interval
// counters of both summed; rates over `interval_s`, the two together.
ReportRow followed_by(const ReportRow &earlier, ReportRow later, double interval_s);

struct MountReport {
    std::string mount;
    std::string dev;
    std::string fstype;
    std::string source;  // the device as mountinfo names it ("/dev/vda1"), as node_exporter labels it
    uint64_t size_bytes = 0;
    uint64_t used_bytes = 0;
    uint64_t available_bytes = 0;
    double used_pct = 0;
    uint64_t write_bytes = 0;  // in this refresh interval
    double write_bps = 0;
    uint64_t total_bytes = 0;
    uint64_t growth_bytes = 0;  // files on it grew by this much in this interval (sum of the rows)
    double growth_bps = 0;
    uint64_t nospace_failures = 0;  // the rows' ENOSPC/EDQUOT failures on it in this interval (sum)
    uint64_t total_nospace_failures = 0;
    std::optional<double> fill_bps;    // net growth of used space (statvfs), window average
    std::optional<double> eta_full_s;  // nullopt when not filling
};

// DropCounters: the one drop-reason table, vocabulary/drop_reasons.h.

// Where a report's numbers come from: top's own BPF programs, or a running
// agent's (over its control socket, docs/control.md).
enum class ReportSource { local, agent, replay };  // replay: top --replay, from the flight record
std::string_view to_string(ReportSource source);

struct WriteReport {
    double ts = 0;  // unix time of the refresh, seconds
    ReportSource source = ReportSource::local;
    double interval_s = 0;
    GroupBy by = GroupBy::process;
    // "container" or "service" when top merged the cgroup grouping's rows
    // (aggregate/container_groups.h); empty: the grouping is `by`.
    std::string grouping;
    std::vector<ReportRow> rows;  // sorted by write_bps, then total_bytes, descending
    std::vector<MountReport> mounts;
    DropCounters drops;
};

}  // namespace diskwatch
