#include "aggregate/write_report.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace diskwatch {

namespace {

// Every counter of a row, by member, for add_counters and with_counters.
template <typename Apply>
void for_each_counter(ReportRow &into, const ReportRow &from, Apply apply)
{
    apply(into.write_bytes, from.write_bytes);
    apply(into.write_bps, from.write_bps);
    apply(into.write_calls, from.write_calls);
    apply(into.total_write_calls, from.total_write_calls);
    apply(into.total_bytes, from.total_bytes);
    apply(into.growth_bytes, from.growth_bytes);
    apply(into.growth_bps, from.growth_bps);
    apply(into.total_growth_bytes, from.total_growth_bytes);
    apply(into.nospace_failures, from.nospace_failures);
    apply(into.total_nospace_failures, from.total_nospace_failures);
    apply(into.processes, from.processes);
}

}  // namespace

void add_counters(ReportRow &into, const ReportRow &from)
{
    for_each_counter(into, from, [](auto &a, const auto &b) { a += b; });
}

ReportRow with_counters(ReportRow describing, const ReportRow &counters)
{
    for_each_counter(describing, counters, [](auto &a, const auto &b) { a = b; });
    return describing;
}

ReportRow followed_by(const ReportRow &earlier, ReportRow later, double interval_s)
{
    later.write_bytes += earlier.write_bytes;
    later.write_calls += earlier.write_calls;
    later.growth_bytes += earlier.growth_bytes;
    later.nospace_failures += earlier.nospace_failures;
    later.processes = std::max(later.processes, earlier.processes);
    later.write_bps = interval_s > 0 ? static_cast<double>(later.write_bytes) / interval_s : 0;
    later.growth_bps = interval_s > 0 ? static_cast<double>(later.growth_bytes) / interval_s : 0;
    // The files both named, the later's first: a file written and closed
    // early in the window keeps the name it had while open.
    for (const auto &file : earlier.files) {
        const bool known = std::any_of(later.files.begin(), later.files.end(), [&](const WrittenFile &f) {
            return f.ino == file.ino && (f.ino != 0 || f.path == file.path);
        });
        if (!known)
            later.files.push_back(file);
        else if (!file.path.empty())
            for (auto &f : later.files)
                if (f.ino == file.ino && f.path.empty())
                    f.path = file.path, f.size_bytes = std::max(f.size_bytes, file.size_bytes);
    }
    return later;
}

std::optional<GroupBy> parse_group_by(std::string_view text)
{
    if (text == "process")
        return GroupBy::process;
    if (text == "cgroup")
        return GroupBy::cgroup;
    if (text == "mount")
        return GroupBy::mount;
    return std::nullopt;
}

std::string_view to_string(GroupBy by)
{
    switch (by) {
    case GroupBy::process:
        return "process";
    case GroupBy::cgroup:
        return "cgroup";
    case GroupBy::mount:
        return "mount";
    }
    return "process";
}

std::string_view to_string(ReportSource source)
{
    switch (source) {
    case ReportSource::agent:
        return "agent";
    case ReportSource::replay:
        return "replay";
    case ReportSource::local:
        break;
    }
    return "local";
}

std::vector<GroupedWrites> group_writes(const std::vector<WriterDelta> &deltas, GroupBy by)
{
    using GroupId = std::tuple<uint64_t, uint32_t>;  // (cgroup or tgid or 0, dev)
    struct Accumulator {
        GroupedWrites group;
        std::unordered_map<uint32_t, WriterCounts> per_tgid_interval;
        std::unordered_map<uint32_t, WriterCounts> per_tgid_total;
        std::unordered_map<uint32_t, uint64_t> cgroup_of_tgid;
        std::unordered_set<uint32_t> live_tgids;
        std::unordered_map<uint32_t, std::vector<uint64_t>> inodes_of_tgid;
    };
    std::map<GroupId, Accumulator> groups;
    for (const auto &delta : deltas) {
        GroupId id;
        switch (by) {
        case GroupBy::process:
            id = {delta.key.tgid, delta.key.dev};
            break;
        case GroupBy::cgroup:
            id = {delta.key.cgroup_id, delta.key.dev};
            break;
        case GroupBy::mount:
            id = {0, delta.key.dev};
            break;
        }
        Accumulator &acc = groups[id];
        acc.group.interval += delta.interval;
        acc.group.total += delta.total;
        acc.per_tgid_interval[delta.key.tgid] += delta.interval;
        acc.per_tgid_total[delta.key.tgid] += delta.total;
        // A process that moved between cgroups: name the cgroup it wrote most from.
        auto &cgroup = acc.cgroup_of_tgid[delta.key.tgid];
        if (cgroup == 0 || delta.interval.write_bytes > 0)
            cgroup = delta.key.cgroup_id;
        if (!delta.process_exited)
            acc.live_tgids.insert(delta.key.tgid);
        auto &inodes = acc.inodes_of_tgid[delta.key.tgid];
        for (uint64_t ino : delta.last_inodes)
            if (std::find(inodes.begin(), inodes.end(), ino) == inodes.end())
                inodes.push_back(ino);
        acc.group.key.dev = delta.key.dev;
    }

    std::vector<GroupedWrites> result;
    result.reserve(groups.size());
    for (auto &[id, acc] : groups) {
        // The representative process: the largest writer of the interval,
        // or of all time when the interval was idle.
        uint32_t best_tgid = 0;
        std::pair<uint64_t, uint64_t> best_score{0, 0};
        bool first = true;
        for (const auto &[tgid, interval] : acc.per_tgid_interval) {
            const auto &total = acc.per_tgid_total[tgid];
            std::pair<uint64_t, uint64_t> score{interval.write_bytes + interval.growth_bytes,
                                                total.write_bytes + total.growth_bytes};
            if (first || score > best_score || (score == best_score && tgid < best_tgid)) {
                best_tgid = tgid;
                best_score = score;
                first = false;
            }
        }
        acc.group.key.tgid = best_tgid;
        acc.group.key.cgroup_id = by == GroupBy::cgroup ? std::get<0>(id) : acc.cgroup_of_tgid[best_tgid];
        acc.group.processes = acc.per_tgid_interval.size();
        acc.group.all_exited = acc.live_tgids.empty();
        acc.group.last_inodes = acc.inodes_of_tgid[best_tgid];
        result.push_back(acc.group);
    }
    return result;
}

}  // namespace diskwatch
