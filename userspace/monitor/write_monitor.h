// The aggregator's driver: drains the kernel's counters and lifecycle records
// every refresh and turns them into a WriteReport with names attached.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "aggregate/mount_growth.h"
#include "aggregate/process_directory.h"
#include "aggregate/write_report.h"
#include "aggregate/writer_ledger.h"
#include "kernel/write_tracer.h"
#include "resolve/cgroups.h"
#include "resolve/containers.h"
#include "resolve/filesystems.h"
#include "resolve/mountinfo.h"
#include "resolve/overlay.h"
#include "resolve/workloads.h"

namespace diskwatch {

// Rows whose files `top` names each refresh: a few directory reads per refresh.
inline constexpr size_t kTopRowsWithFiles = 64;

struct ReportOptions {
    GroupBy by = GroupBy::process;
    // Rows with no bytes in this interval but some since the start
    // (the accumulated view); otherwise only active rows are listed.
    bool include_idle = false;
    // How many of the top rows get their files named (from /proc/PID/fd):
    // the rows a person looks at, not every writer. 0 (the default: the
    // agent's fast loop) names none; `top` asks for kTopRowsWithFiles.
    size_t rows_with_files = 0;
    size_t files_per_row = 4;
    // --all-mounts: list overlay and the other mounts hidden_by_default()
    // leaves out (resolve/mountinfo.h) in the mount rows too.
    bool all_mounts = false;
};

class WriteMonitor {
public:
    // containers: names, images and Compose labels of the rows' containers
    // (shared with the agent's protection); null: a resolver of its own
    // reading the default roots.
    static std::unique_ptr<WriteMonitor> start(HookFamily family, std::string *error,
                                               std::shared_ptr<ContainerResolver> containers = nullptr);
    ~WriteMonitor();
    WriteMonitor(const WriteMonitor &) = delete;
    WriteMonitor &operator=(const WriteMonitor &) = delete;

    // Sleeps up to timeout_ms, or until a rate alarm, a filling ring buffer
    // or wake(); then consumes the lifecycle records waiting. It need not be
    // called between refreshes: refresh() consumes them first, and the kernel
    // wakes the sleeper before the ring buffer can fill.
    void pump_events(int timeout_ms);
    // Ends a pump_events() sleep early (any thread; async-signal-safe).
    void wake() const { tracer_->wake(); }
    // Reads the counters and produces the report of the interval since the
    // previous refresh (or since start).
    WriteReport refresh(const ReportOptions &options);
    // The latest refresh's data again, grouped and filtered as `options` asks,
    // without reading the kernel (its interval, mounts and drops unchanged).
    // The agent serves `top` its cumulative rows this way.
    WriteReport regroup_last(const ReportOptions &options);

    // The container resolver its rows are named with (the agent's protection shares it).
    const std::shared_ptr<ContainerResolver> &containers() const { return containers_; }

    const WriteTracer &tracer() const { return *tracer_; }
    // The agent sets rate alarms and holds throttles in the kernel through it.
    WriteTracer &tracer() { return *tracer_; }

private:
    WriteMonitor(std::unique_ptr<WriteTracer> tracer, std::shared_ptr<ContainerResolver> containers);
    void reap_vanished_processes(std::unordered_set<uint32_t> &exited, uint64_t ringbuf_drops);
    std::vector<ReportRow> rows_of(const std::vector<WriterDelta> &deltas, double interval_s,
                                   const ReportOptions &options);
    std::vector<MountReport> mount_reports(double interval_s, double now_s, bool all_mounts);

    std::unique_ptr<WriteTracer> tracer_;
    ProcessDirectory processes_;
    WriterLedger ledger_;
    MountTable mounts_;
    // /proc/self/mountinfo, kept open only to be told (POLLPRI) when the mount
    // table changes: parsing it on every refresh was most of an idle refresh.
    int mount_changes_fd_ = -1;
    bool mounts_changed();
    // Overlay devices -> the filesystem of their upper layer: the deltas'
    // devices are rewritten with it (the kernel's keys are not), so rows,
    // mount rows, rules and metrics count container bytes on the disk they fill.
    OverlayAttribution overlays_;
    void reload_mounts();
    // The kernel's devices of the keys with counters (before attribution): a
    // gone overlay keeps its mapping while one of them is its.
    std::unordered_set<uint32_t> raw_devices_;
    std::optional<CgroupResolver> cgroups_;
    MountGrowthTracker growth_;
    std::shared_ptr<ContainerResolver> containers_;
    std::chrono::steady_clock::time_point last_refresh_;
    std::chrono::steady_clock::time_point start_;
    unsigned refreshes_ = 0;
    std::vector<WriterDelta> last_deltas_;  // every key with a total, as of the latest refresh
    WriteReport last_report_;               // its interval, mounts and drops (rows not kept)
    // Bytes per device (kernel dev_t) in last_deltas_, for the mount rows.
    struct MountBytes {
        uint64_t interval_write = 0;
        uint64_t total_write = 0;
        uint64_t interval_growth = 0;
        uint64_t interval_nospace = 0;  // ENOSPC/EDQUOT failures
        uint64_t total_nospace = 0;
    };
    std::unordered_map<uint32_t, MountBytes> mount_bytes_;
    // The latest statfs of each filesystem (kernel dev_t), and when.
    struct UsageRead {
        FilesystemUsage usage;
        double read_s = 0;
    };
    static constexpr double kIdleUsageReadS = 1.0;
    std::unordered_map<uint32_t, UsageRead> usage_read_;
    DropCounters drops_;            // as of the latest read of the counters
    bool intervals_zero_ = false;   // last_deltas_ and mount_bytes_ already say "nothing this interval"
    uint64_t ringbuf_drops_at_sweep_ = 0;
};

}  // namespace diskwatch
