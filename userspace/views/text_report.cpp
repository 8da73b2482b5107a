#include "views/text_report.h"

#include <cstdio>
#include <string>

#include "views/format.h"

namespace diskwatch {

std::string who_text(const ReportRow &row)
{
    if (row.containers > 1 && !row.compose_service.empty())
        return "service " + row.compose_project + "/" + row.compose_service + " (" + std::to_string(row.containers) +
               " containers)";
    if (!row.compose_service.empty())
        return "container " + (row.container_name.empty() ? row.container.substr(0, 12) : row.container_name) +
               " (service " + row.compose_project + "/" + row.compose_service + ")";
    if (!row.container.empty())
        return "container " + (row.container_name.empty() ? row.container.substr(0, 12) : row.container_name);
    if (!row.unit.empty())
        return row.unit;
    return row.cgroup;
}

std::string files_text(const ReportRow &row)
{
    std::string text;
    for (const auto &file : row.files) {
        if (!text.empty())
            text += ", ";
        text += file.path.empty() ? "inode " + std::to_string(file.ino) : terminal_safe(file.path);
        if (file.deleted)
            text += " (DELETED, still open)";
    }
    return text;
}

std::string to_text_table(const WriteReport &report, size_t max_rows)
{
    std::string out;
    char line[512];
    std::snprintf(line, sizeof(line), "ebpf-diskwatch %s  interval %.2fs  by %s  source %s\n",
                  rfc3339_utc(report.ts).c_str(), report.interval_s,
                  report.grouping.empty() ? std::string(to_string(report.by)).c_str() : report.grouping.c_str(),
                  std::string(to_string(report.source)).c_str());
    out += line;
    for (const auto &mount : report.mounts) {
        // The mount point is as long as a user makes it (PATH_MAX, four
        // columns per escaped byte): it goes beside the fixed-size buffer, never
        // into it, where it would cut the line's end off and merge two lines.
        const std::string name = terminal_safe(mount.mount);
        out += "  " + name + std::string(name.size() < 24 ? 24 - name.size() : 0, ' ');
        std::snprintf(line, sizeof(line), " %-8s %-6s %5.1f%% of %-7s write %-10s grow %-10s fill %-10s full in %s\n",
                      mount.dev.c_str(), mount.fstype.c_str(), mount.used_pct,
                      human_bytes(static_cast<double>(mount.size_bytes)).c_str(),
                      human_rate(mount.write_bps).c_str(), human_rate(mount.growth_bps).c_str(),
                      mount.fill_bps ? human_rate(*mount.fill_bps).c_str() : "-",
                      human_duration(mount.eta_full_s).c_str());
        out += line;
    }
    std::snprintf(line, sizeof(line), "%8s  %-16s %-32s %-20s %10s %10s %10s\n", "PID", "COMM", "CGROUP/UNIT",
                  "MOUNT", "WRITE/s", "GROW/s", "TOTAL");
    out += line;
    size_t shown = 0;
    for (const auto &row : report.rows) {
        if (max_rows && shown++ >= max_rows)
            break;
        std::string comm = terminal_safe(row.comm);
        if (row.exited)
            comm = "[" + comm + "]";
        std::snprintf(line, sizeof(line), "%8u  %-16.16s %-32s %-20s %10s %10s %10s\n", row.pid, comm.c_str(),
                      fit_path(terminal_safe(who_text(row)), 32).c_str(),
                      fit_path(terminal_safe(row.mount.empty() ? row.dev : row.mount), 20).c_str(), human_rate(row.write_bps).c_str(),
                      human_rate(row.growth_bps).c_str(), human_bytes(static_cast<double>(row.total_bytes)).c_str());
        out += line;
        if (!row.files.empty())
            out += "          file " + files_text(row) + "\n";
        // Only when it happened: who keeps trying on a full disk (issue #20),
        // beside the columns, which stay as scripts read them.
        if (row.nospace_failures || row.total_nospace_failures)
            out += "          disk full: " + std::to_string(row.nospace_failures) + " writes refused (" +
                   std::to_string(row.total_nospace_failures) + " in all)\n";
    }
    const auto &drops = report.drops;
    // Every drop reason (vocabulary/drop_reasons.h), the non-zero ones.
    std::string dropped;
    for (const auto &reason : kDropReasons)
        if ((reason.views & kDropViewText) && drops.*reason.counter)
            dropped += " " + std::string(reason.name) + "=" + std::to_string(drops.*reason.counter);
    if (!dropped.empty())
        out += "dropped:" + dropped + "\n";
    return out;
}

}  // namespace diskwatch
